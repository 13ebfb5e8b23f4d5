//! llama.cpp's Q/K row order for `llama` (`LlamaModel.permute` in the reference):
//! Hugging Face stores each head's rotary pairs as two halves (`x[i]`, `x[i + d/2]`),
//! llama.cpp's RoPE wants them interleaved (`x[2i]`, `x[2i + 1]`). The weight's rows
//! are reshaped `(n_head, 2, head_dim / 2, cols)` and axes 1 and 2 swapped, which
//! moves whole rows only: so the writer reads the rows from the mmap in this order
//! instead of loading and permuting the tensor. Qwen2 keeps Hugging Face's order
//! (`Qwen2Model` has no permutation).

/// For each output row, the input row it is: output row `h*d + 2*i + j` is input
/// row `h*d + j*(d/2) + i` (`d` = rows / `n_head`, `i < d/2`, `j < 2`).
///
/// # Errors
/// A message when `n_head` is 0 or the rows are not `n_head` whole heads of an even
/// head size (the reference's reshape would fail the same way).
pub fn rope_row_order(rows: u64, n_head: u64) -> Result<Vec<u32>, String> {
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return Err(format!("{rows} rows are not {n_head} heads of an even size (RoPE permutation)"));
    }
    let rows32 = u32::try_from(rows).map_err(|_| format!("{rows} rows are too many to permute"))?;
    let d = rows32 / n_head as u32;
    let half = d / 2;
    let mut order = Vec::with_capacity(rows32 as usize);
    for h in 0..n_head as u32 {
        for i in 0..half {
            for j in 0..2 {
                order.push(h * d + j * half + i);
            }
        }
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference's reshape/swapaxes/reshape, computed on a row-major array the
    /// numpy way: index arithmetic over the 4-D view, not the formula above.
    fn numpy_permute(x: &[f32], rows: usize, cols: usize, n_head: usize) -> Vec<f32> {
        let (a, b, c) = (n_head, 2, rows / n_head / 2);
        // y has shape (a, c, b, cols) = swapaxes(1, 2) of x viewed as (a, b, c, cols).
        let mut y = vec![0f32; x.len()];
        for ia in 0..a {
            for ic in 0..c {
                for ib in 0..b {
                    for k in 0..cols {
                        let src = ((ia * b + ib) * c + ic) * cols + k;
                        let dst = ((ia * c + ic) * b + ib) * cols + k;
                        y[dst] = x[src];
                    }
                }
            }
        }
        y
    }

    #[test]
    fn row_order_equals_numpys_reshape_and_swap() {
        for (rows, cols, n_head) in [(8, 3, 2), (12, 5, 3), (16, 2, 1), (32, 4, 8)] {
            let x: Vec<f32> = (0..rows * cols).map(|v| v as f32).collect();
            let want = numpy_permute(&x, rows, cols, n_head);
            let order = rope_row_order(rows as u64, n_head as u64).unwrap();
            let got: Vec<f32> = order
                .iter()
                .flat_map(|&r| x[r as usize * cols..(r as usize + 1) * cols].iter().copied())
                .collect();
            assert_eq!(got, want, "rows {rows} heads {n_head}");
        }
    }

    #[test]
    fn heads_that_do_not_divide_are_refused() {
        assert!(rope_row_order(12, 5).unwrap_err().contains("12 rows are not 5 heads"));
        assert!(rope_row_order(6, 2).is_err(), "head size 3 is odd");
        assert!(rope_row_order(6, 0).is_err());
    }
}
