//! Thermodynamic smoothing of parameter sequences: Markov validation, boundary smoothing
//! and transition optimization.
//!
//! The three phases apply to any sequence of positive parameters `p_0, p_1, ...`: the
//! per-timestep activation scales of [`super::time_groups`], or the weight-group scales
//! along a tensor.
//!
//! 1. **Markov validation** ([`MarkovValidator`], O(1) memory): the transition ratio
//!    `r_k = |p_{k+1} - p_k| / max(|p_k|, eps)` (`eps = 1e-12`); a violation where
//!    `r_k > smoothness_threshold`. Reports the count and the maximum ratio.
//! 2. **Boundary smoothing** ([`BoundarySmoother`], a fixed ring of `CAP` values): a
//!    *boundary* is a violating transition `k -> k+1` of the input. Each element `i` within
//!    `window_size` of a boundary (`k - w < i <= k + w`) is replaced by
//!    `p_k + h(u) (p_{k+1} - p_k)`, `u = (i - k - 1/2 + w) / (2w)`, using the nearest
//!    boundary (ties to the left). `h` is linear (`u`), cubic (the C2 smootherstep
//!    `6u^5 - 15u^4 + 10u^3`) or sigmoid (`1 / (1 + e^{-12 (u - 1/2)})`, rescaled to
//!    `h(0) = 0`, `h(1) = 1`). Transitions that do not violate are left alone, so a long
//!    window cannot flatten a whole sequence.
//! 3. **Transition optimization** ([`optimize_transitions`], in place, O(1) extra
//!    memory): gradient descent on `ln p` minimising
//!    `J = mean_i mse_i(p_i) + beta(it) * markov_weight * mean_k max(0, r_k - threshold)^2
//!    - entropy_weight * mean_i H_i(p_i) / bits`, where `mse_i` and the code-histogram
//!    entropy `H_i` come from a [`SequenceModel`]. `beta` ramps from `1/N` to 1 (linear)
//!    or along a half cosine, so early iterations favour fidelity. Stops after
//!    `max_iterations` or when `J` changes by less than `convergence_threshold`.

use super::DiffusionError;

/// Denominator floor of the Markov ratio.
pub const MARKOV_EPS: f32 = 1e-12;

/// Interpolation weights for boundary smoothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InterpolationMethod {
    /// `h(u) = u`: C0 continuity.
    #[default]
    Linear,
    /// Smootherstep `6u^5 - 15u^4 + 10u^3`: C2 continuity.
    Cubic,
    /// A logistic curve rescaled to pass through 0 and 1.
    Sigmoid,
}

impl InterpolationMethod {
    /// The weight `h(u)` for `u` in `[0, 1]`.
    pub fn weight(self, u: f32) -> f32 {
        let u = u.clamp(0.0, 1.0);
        match self {
            Self::Linear => u,
            Self::Cubic => u * u * u * (u * (u * 6.0 - 15.0) + 10.0),
            Self::Sigmoid => {
                let s = |x: f32| 1.0 / (1.0 + libm::expf(-12.0 * (x - 0.5)));
                let (s0, s1) = (s(0.0), s(1.0));
                (s(u) - s0) / (s1 - s0)
            }
        }
    }
}

/// How the smoothness weight is annealed over the iterations of transition optimization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BetaSchedule {
    /// `beta = (it + 1) / N`.
    #[default]
    Linear,
    /// `beta = (1 - cos(pi (it + 1) / N)) / 2`.
    Cosine,
}

impl BetaSchedule {
    /// The weight at iteration `it` (0-based) of `n`.
    pub fn beta(self, it: usize, n: usize) -> f64 {
        let x = (it + 1) as f64 / n.max(1) as f64;
        match self {
            Self::Linear => x,
            Self::Cosine => 0.5 * (1.0 - libm::cos(core::f64::consts::PI * x)),
        }
    }
}

/// Phase 1: Markov validation.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Run the validation (reporting only; default true).
    pub enabled: bool,
    /// Largest allowed transition ratio `r_k` (default 0.25).
    pub smoothness_threshold: f32,
    /// Log each layer's violations (default true; the adapter does the logging).
    pub log_violations: bool,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        ValidationConfig { enabled: true, smoothness_threshold: 0.25, log_violations: true }
    }
}

/// Phase 2: boundary smoothing.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoundarySmoothingConfig {
    /// Smooth (default false: no worthwhile gain measured, see docs/DIFFUSION.md).
    pub enabled: bool,
    /// Elements on each side of a boundary that are blended (default 5, at least 1).
    pub window_size: usize,
    /// Blend weights (default linear).
    pub interpolation: InterpolationMethod,
}

impl Default for BoundarySmoothingConfig {
    fn default() -> Self {
        BoundarySmoothingConfig { enabled: false, window_size: 5, interpolation: InterpolationMethod::Linear }
    }
}

/// Phase 3: transition optimization.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransitionOptimizationConfig {
    /// Optimise (default false: no measurable effect at these defaults, see docs/DIFFUSION.md).
    pub enabled: bool,
    /// Weight of the Markov smoothness penalty (default 0.1).
    pub markov_weight: f32,
    /// Weight of the negative code-histogram entropy (default 0.05).
    pub entropy_weight: f32,
    /// Gradient step on `ln p` (default 0.01).
    pub learning_rate: f32,
    /// Iteration limit (default 50).
    pub max_iterations: usize,
    /// Stop when the objective changes by less than this (default 1e-4).
    pub convergence_threshold: f32,
    /// Annealing of the smoothness weight (default linear).
    pub beta_schedule: BetaSchedule,
}

impl Default for TransitionOptimizationConfig {
    fn default() -> Self {
        TransitionOptimizationConfig {
            enabled: false,
            markov_weight: 0.1,
            entropy_weight: 0.05,
            learning_rate: 0.01,
            max_iterations: 50,
            convergence_threshold: 1e-4,
            beta_schedule: BetaSchedule::Linear,
        }
    }
}

/// The three phases together.
#[derive(Clone, Copy, Debug, PartialEq, Default, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThermodynamicConfig {
    /// Phase 1.
    pub validation: ValidationConfig,
    /// Phase 2.
    pub boundary_smoothing: BoundarySmoothingConfig,
    /// Phase 3.
    pub transition_optimization: TransitionOptimizationConfig,
}

impl ThermodynamicConfig {
    /// Checks every knob (whether or not its phase is enabled).
    ///
    /// # Errors
    /// [`DiffusionError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), DiffusionError> {
        check_threshold(self.validation.smoothness_threshold)?;
        if self.boundary_smoothing.window_size == 0 {
            return Err(DiffusionError::InvalidConfig("boundary_smoothing.window_size must be at least 1"));
        }
        let t = &self.transition_optimization;
        let ok = |x: f32| x.is_finite() && x >= 0.0;
        if !ok(t.markov_weight) {
            return Err(DiffusionError::InvalidConfig(
                "transition_optimization.markov_weight must be finite and >= 0",
            ));
        }
        if !ok(t.entropy_weight) {
            return Err(DiffusionError::InvalidConfig(
                "transition_optimization.entropy_weight must be finite and >= 0",
            ));
        }
        if !(ok(t.learning_rate) && t.learning_rate > 0.0) {
            return Err(DiffusionError::InvalidConfig(
                "transition_optimization.learning_rate must be finite and > 0",
            ));
        }
        if !ok(t.convergence_threshold) {
            return Err(DiffusionError::InvalidConfig(
                "transition_optimization.convergence_threshold must be finite and >= 0",
            ));
        }
        Ok(())
    }
}

fn check_threshold(th: f32) -> Result<(), DiffusionError> {
    if th.is_finite() && th > 0.0 {
        Ok(())
    } else {
        Err(DiffusionError::InvalidConfig("validation.smoothness_threshold must be finite and > 0"))
    }
}

/// The Markov ratio of the transition `a -> b`.
#[inline]
pub fn markov_ratio(a: f32, b: f32) -> f32 {
    (b - a).abs() / a.abs().max(MARKOV_EPS)
}

/// Result of Markov validation over one sequence.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct MarkovReport {
    /// Transitions checked (`len - 1`).
    pub transitions: u64,
    /// Transitions with `r_k > threshold`.
    pub violations: u64,
    /// Largest `r_k` seen (0 for fewer than two elements).
    pub max_ratio: f32,
    /// Index `k` of the first violating transition.
    pub first_violation: Option<u64>,
}

/// Streaming Markov validation: O(1) memory, one element at a time.
#[derive(Clone, Copy, Debug)]
pub struct MarkovValidator {
    threshold: f32,
    prev: Option<f32>,
    report: MarkovReport,
}

impl MarkovValidator {
    /// A validator with `threshold` (`smoothness_threshold`).
    ///
    /// # Errors
    /// [`DiffusionError::InvalidConfig`] unless the threshold is finite and positive.
    pub fn new(threshold: f32) -> Result<Self, DiffusionError> {
        check_threshold(threshold)?;
        Ok(MarkovValidator { threshold, prev: None, report: MarkovReport::default() })
    }

    /// Adds the next parameter.
    ///
    /// # Errors
    /// [`DiffusionError::InvalidStats`] for a NaN or infinite parameter (index in the sequence).
    pub fn push(&mut self, p: f32) -> Result<(), DiffusionError> {
        if !p.is_finite() {
            return Err(DiffusionError::InvalidStats { index: self.report.transitions as usize + 1 });
        }
        if let Some(a) = self.prev {
            let r = markov_ratio(a, p);
            if r > self.threshold {
                if self.report.first_violation.is_none() {
                    self.report.first_violation = Some(self.report.transitions);
                }
                self.report.violations += 1;
            }
            self.report.max_ratio = self.report.max_ratio.max(r);
            self.report.transitions += 1;
        }
        self.prev = Some(p);
        Ok(())
    }

    /// The report so far.
    pub fn report(&self) -> MarkovReport {
        self.report
    }
}

/// Validates a whole slice.
///
/// # Errors
/// As [`MarkovValidator::new`] and [`MarkovValidator::push`].
pub fn validate(params: &[f32], threshold: f32) -> Result<MarkovReport, DiffusionError> {
    let mut v = MarkovValidator::new(threshold)?;
    for &p in params {
        v.push(p)?;
    }
    Ok(v.report())
}

/// Streaming boundary smoother with a ring of `CAP` raw values (`2 window + 1 <= CAP`).
///
/// Output lags input by `window_size` elements: [`push`](Self::push) returns the smoothed
/// value of element `i - window_size` once element `i` is in, and [`flush`](Self::flush)
/// drains the tail. Memory: `CAP * 4` bytes plus a few words.
#[derive(Clone, Debug)]
pub struct BoundarySmoother<const CAP: usize = 64> {
    ring: [f32; CAP],
    window: usize,
    threshold: f32,
    method: InterpolationMethod,
    received: usize,
    emitted: usize,
}

impl<const CAP: usize> BoundarySmoother<CAP> {
    /// A smoother for `window_size`, boundaries at transitions with ratio above `threshold`.
    ///
    /// # Errors
    /// [`DiffusionError::InvalidConfig`] if the window is 0 or `2 window + 1 > CAP`, or the
    /// threshold is not finite and positive.
    pub fn new(config: &BoundarySmoothingConfig, threshold: f32) -> Result<Self, DiffusionError> {
        check_threshold(threshold)?;
        let w = config.window_size;
        if w == 0 {
            return Err(DiffusionError::InvalidConfig("boundary_smoothing.window_size must be at least 1"));
        }
        if 2 * w + 1 > CAP {
            return Err(DiffusionError::InvalidConfig(
                "boundary_smoothing.window_size too large for the buffer",
            ));
        }
        Ok(BoundarySmoother {
            ring: [0.0; CAP],
            window: w,
            threshold,
            method: config.interpolation,
            received: 0,
            emitted: 0,
        })
    }

    fn raw(&self, i: usize) -> f32 {
        self.ring[i % CAP]
    }

    fn is_boundary(&self, k: usize) -> bool {
        k + 1 < self.received && markov_ratio(self.raw(k), self.raw(k + 1)) > self.threshold
    }

    fn smoothed(&self, i: usize) -> f32 {
        let w = self.window;
        for d in 0..w {
            // Nearest boundary midpoint first, the left one on ties.
            let left = (i > d).then(|| i - d - 1);
            for k in [left, Some(i + d)].into_iter().flatten() {
                if self.is_boundary(k) {
                    let (l, r) = (self.raw(k), self.raw(k + 1));
                    let u = (i as f32 - k as f32 - 0.5 + w as f32) / (2 * w) as f32;
                    return l + self.method.weight(u) * (r - l);
                }
            }
        }
        self.raw(i)
    }

    /// Adds the next raw value; returns the next smoothed value once `window_size` more are in.
    ///
    /// # Errors
    /// [`DiffusionError::InvalidStats`] for a NaN or infinite value.
    pub fn push(&mut self, p: f32) -> Result<Option<f32>, DiffusionError> {
        if !p.is_finite() {
            return Err(DiffusionError::InvalidStats { index: self.received });
        }
        self.ring[self.received % CAP] = p;
        self.received += 1;
        if self.received > self.emitted + self.window {
            let out = self.smoothed(self.emitted);
            self.emitted += 1;
            Ok(Some(out))
        } else {
            Ok(None)
        }
    }

    /// After the last [`push`](Self::push): the next remaining smoothed value, or `None`
    /// when all are out (the smoother is then reset).
    pub fn flush(&mut self) -> Option<f32> {
        if self.emitted < self.received {
            let out = self.smoothed(self.emitted);
            self.emitted += 1;
            Some(out)
        } else {
            self.received = 0;
            self.emitted = 0;
            None
        }
    }
}

/// Boundary-smooths a slice in place (the streaming smoother with `CAP = 64`, so
/// `window_size <= 31`).
///
/// # Errors
/// As [`BoundarySmoother::new`] and [`BoundarySmoother::push`].
pub fn smooth_in_place(
    params: &mut [f32],
    config: &BoundarySmoothingConfig,
    threshold: f32,
) -> Result<(), DiffusionError> {
    let mut s = BoundarySmoother::<64>::new(config, threshold)?;
    let mut out = 0;
    for i in 0..params.len() {
        if let Some(v) = s.push(params[i])? {
            params[out] = v;
            out += 1;
        }
    }
    while let Some(v) = s.flush() {
        params[out] = v;
        out += 1;
    }
    Ok(())
}

/// The data side of transition optimization: what a parameter value costs each element.
pub trait SequenceModel {
    /// Elements in the sequence.
    fn len(&self) -> usize;
    /// Whether the sequence is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Normalised data error of element `i` with parameter `p` (e.g. activation MSE
    /// divided by the mean square of the activations).
    fn mse(&self, i: usize, p: f32) -> f64;
    /// Entropy in bits of the code histogram of element `i` with parameter `p`.
    fn entropy_bits(&self, i: usize, p: f32) -> f64;
    /// Code width in bits (normalises the entropy term).
    fn bits(&self) -> u8;
}

/// What [`optimize_transitions`] did.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct OptimizeReport {
    /// Iterations run.
    pub iterations: usize,
    /// Objective before the first step (with `beta = 1`).
    pub initial_objective: f64,
    /// Objective after the last step (with `beta = 1`).
    pub final_objective: f64,
    /// Whether the convergence threshold stopped it.
    pub converged: bool,
}

fn objective<M: SequenceModel>(
    p: &[f32],
    model: &M,
    cfg: &TransitionOptimizationConfig,
    th: f32,
    beta: f64,
) -> f64 {
    let n = p.len() as f64;
    let bits = f64::from(model.bits().max(1));
    let mut data = 0.0;
    for (i, &x) in p.iter().enumerate() {
        data += model.mse(i, x) - f64::from(cfg.entropy_weight) * model.entropy_bits(i, x) / bits;
    }
    let mut smooth = 0.0;
    for w in p.windows(2) {
        let e = f64::from(markov_ratio(w[0], w[1]) - th).max(0.0);
        smooth += e * e;
    }
    let smooth = if p.len() > 1 { smooth / (n - 1.0) } else { 0.0 };
    data / n + beta * f64::from(cfg.markov_weight) * smooth
}

/// Phase 3: gradient descent on `ln p` (see the module docs), in place.
///
/// Gradients of the data terms are central differences (relative step 1e-3); the
/// smoothness gradient is analytic. Updates use the previous iterate for every element
/// (Jacobi), with one carried value, so extra memory is O(1).
///
/// # Errors
/// [`DiffusionError::LengthMismatch`] if `params` and `model` differ in length,
/// [`DiffusionError::InvalidStats`] for a parameter that is not finite and positive, and
/// invalid configuration.
pub fn optimize_transitions<M: SequenceModel>(
    params: &mut [f32],
    model: &M,
    cfg: &TransitionOptimizationConfig,
    threshold: f32,
) -> Result<OptimizeReport, DiffusionError> {
    ThermodynamicConfig { transition_optimization: *cfg, ..Default::default() }.validate()?;
    check_threshold(threshold)?;
    if params.len() != model.len() {
        return Err(DiffusionError::LengthMismatch { expected: model.len(), actual: params.len() });
    }
    if let Some(i) = params.iter().position(|p| !(p.is_finite() && *p > 0.0)) {
        return Err(DiffusionError::InvalidStats { index: i });
    }
    let n = params.len();
    let mut report = OptimizeReport {
        initial_objective: objective(params, model, cfg, threshold, 1.0),
        ..Default::default()
    };
    if n == 0 {
        return Ok(report);
    }
    let bits = f64::from(model.bits().max(1));
    let ew = f64::from(cfg.entropy_weight);
    let mw = f64::from(cfg.markov_weight);
    let lr = f64::from(cfg.learning_rate);
    let th = f64::from(threshold);
    let ns = (n.max(2) - 1) as f64;
    let mut prev_j = f64::INFINITY;
    for it in 0..cfg.max_iterations {
        let beta = cfg.beta_schedule.beta(it, cfg.max_iterations);
        let mut carry_old = 0.0f64; // p_{i-1} before this iteration's update
        for i in 0..n {
            let pi = f64::from(params[i]);
            // Data term: d/d ln p = p * d/dp, by central differences.
            let h = pi * 1e-3;
            let f = |x: f64| model.mse(i, x as f32) - ew * model.entropy_bits(i, x as f32) / bits;
            let g_data = (f(pi + h) - f(pi - h)) / (2.0 * h) * pi / n as f64;
            // Smoothness: r = |b - a| / a for positive parameters.
            let mut g_s = 0.0;
            if i > 0 {
                let a = carry_old;
                let r = (pi - a).abs() / a;
                if r > th {
                    g_s += 2.0 * (r - th) * (pi - a).signum() / a * pi;
                }
            }
            if i + 1 < n {
                let b = f64::from(params[i + 1]);
                let r = (b - pi).abs() / pi;
                if r > th {
                    // d/da of |b - a| / a = -b / a^2 for b > a, b / a^2 for b < a.
                    let dr = if b >= pi { -b / (pi * pi) } else { b / (pi * pi) };
                    g_s += 2.0 * (r - th) * dr * pi;
                }
            }
            let g = g_data + beta * mw * g_s / ns;
            carry_old = pi;
            // Multiplicative step keeps p positive; cap it at a factor of e per iteration.
            let step = (lr * g).clamp(-1.0, 1.0);
            params[i] = (pi * libm::exp(-step)) as f32;
        }
        report.iterations = it + 1;
        let j = objective(params, model, cfg, threshold, beta);
        if (prev_j - j).abs() < f64::from(cfg.convergence_threshold) {
            report.converged = true;
            break;
        }
        prev_j = j;
    }
    report.final_objective = objective(params, model, cfg, threshold, 1.0);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn defaults_match_the_api_reference() {
        let c = ThermodynamicConfig::default();
        assert_eq!(c.validation.smoothness_threshold, 0.25);
        assert_eq!(c.boundary_smoothing.window_size, 5);
        assert_eq!(c.boundary_smoothing.interpolation, InterpolationMethod::Linear);
        let t = c.transition_optimization;
        assert_eq!((t.markov_weight, t.entropy_weight, t.learning_rate), (0.1, 0.05, 0.01));
        assert_eq!((t.max_iterations, t.convergence_threshold), (50, 1e-4));
        assert_eq!(t.beta_schedule, BetaSchedule::Linear);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_config_is_an_error() {
        let mut c = ThermodynamicConfig::default();
        c.boundary_smoothing.window_size = 0;
        assert!(matches!(c.validate(), Err(DiffusionError::InvalidConfig(_))));
        assert!(BoundarySmoother::<64>::new(&c.boundary_smoothing, 0.25).is_err());
        let big = BoundarySmoothingConfig { window_size: 32, ..Default::default() };
        assert!(BoundarySmoother::<64>::new(&big, 0.25).is_err());
        assert!(MarkovValidator::new(f32::NAN).is_err());
        let mut c = ThermodynamicConfig::default();
        c.transition_optimization.learning_rate = f32::NAN;
        assert!(c.validate().is_err());
        let mut v = MarkovValidator::new(0.25).unwrap();
        assert_eq!(v.push(f32::NAN), Err(DiffusionError::InvalidStats { index: 1 }));
    }

    #[test]
    fn interpolation_endpoints_and_monotone() {
        for m in [InterpolationMethod::Linear, InterpolationMethod::Cubic, InterpolationMethod::Sigmoid] {
            assert!(m.weight(0.0).abs() < 1e-6 && (m.weight(1.0) - 1.0).abs() < 1e-6);
            let mut last = -1.0;
            for i in 0..=100 {
                let w = m.weight(i as f32 / 100.0);
                assert!(w >= last);
                last = w;
            }
        }
        assert!((InterpolationMethod::Cubic.weight(0.5) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn validator_counts() {
        let r = validate(&[1.0, 1.1, 2.0, 2.0, 1.0], 0.25).unwrap();
        assert_eq!((r.transitions, r.violations, r.first_violation), (4, 2, Some(1)));
        assert!((r.max_ratio - 0.5 / 0.55 * 1.1 / 1.1).abs() < 0.5);
    }

    #[test]
    fn smoothing_spreads_a_step_and_keeps_plateaus() {
        let mut p: Vec<f32> = (0..40).map(|i| if i < 20 { 1.0 } else { 3.0 }).collect();
        let cfg = BoundarySmoothingConfig {
            enabled: true,
            window_size: 5,
            interpolation: InterpolationMethod::Linear,
        };
        smooth_in_place(&mut p, &cfg, 0.25).unwrap();
        // Untouched far from the boundary.
        assert_eq!(&p[..15], &[1.0; 15]);
        assert_eq!(&p[25..], &[3.0; 15]);
        // Monotone ramp and no violation left (ratio 2/10 per step).
        assert!(p.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(validate(&p, 0.25).unwrap().violations, 0);
        // A sequence without violations is unchanged.
        let mut q: Vec<f32> = (0..30).map(|i| 1.0 + 0.1 * i as f32).collect();
        let orig = q.clone();
        smooth_in_place(&mut q, &cfg, 0.25).unwrap();
        assert_eq!(q, orig);
    }

    struct Quadratic<'a>(&'a [f32]);
    impl SequenceModel for Quadratic<'_> {
        fn len(&self) -> usize {
            self.0.len()
        }
        fn mse(&self, i: usize, p: f32) -> f64 {
            let d = f64::from(p / self.0[i]) - 1.0;
            d * d
        }
        fn entropy_bits(&self, _i: usize, _p: f32) -> f64 {
            0.0
        }
        fn bits(&self) -> u8 {
            8
        }
    }

    #[test]
    fn optimization_reduces_the_objective() {
        let target: Vec<f32> = (0..20).map(|i| if i < 10 { 1.0 } else { 4.0 }).collect();
        let mut p = target.clone();
        let cfg = TransitionOptimizationConfig {
            enabled: true,
            markov_weight: 5.0,
            learning_rate: 0.05,
            max_iterations: 300,
            convergence_threshold: 0.0,
            ..Default::default()
        };
        let r = optimize_transitions(&mut p, &Quadratic(&target), &cfg, 0.25).unwrap();
        assert!(r.final_objective < r.initial_objective, "{r:?}");
        assert!(validate(&p, 0.25).unwrap().max_ratio < 3.0);
        let mut bad = [1.0, -1.0];
        assert!(optimize_transitions(&mut bad, &Quadratic(&[1.0, 1.0]), &cfg, 0.25).is_err());
    }
}
