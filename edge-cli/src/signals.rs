//! Signals that end a run: SIGINT, SIGTERM and SIGHUP remove the temporary files and
//! exit with 128 + the signal (130, 143, 129); SIGBUS from a model file that shrank
//! while mapped names the file, removes the temporary files and exits with 2; SIGABRT
//! (an allocation that failed outside our own `try_reserve`s, in a dependency: Rust
//! aborts on those) removes the temporary files and exits with 2 after Rust's own
//! "memory allocation of N bytes failed" line.
//!
//! The previous output is never touched: it is replaced only by the rename of a
//! finished file. The handler runs in signal context, so it only calls
//! async-signal-safe functions: [`arrowquant_std::temp_files::remove_all`] (atomic
//! swaps and `unlink`), [`arrowquant_std::mapped_files::file_at`] (atomic loads),
//! `write(2)` and `_exit(2)`. Why a handler and not a re-check of the file length
//! alone: see `arrowquant_std::window`'s module docs (the library re-checks before
//! every window; only a handler can catch a truncation in the middle of one).

/// The signals [`on_signal`] handles.
#[cfg(unix)]
const HANDLED: [libc::c_int; 5] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGBUS, libc::SIGABRT];

/// Installs the handler (first thing in `main`, before any thread exists). A signal
/// ignored by the parent (`nohup` ignores SIGHUP) stays ignored.
#[cfg(unix)]
pub fn install() {
    for sig in HANDLED {
        // SAFETY: `sigaction` with a zeroed struct filled in here: a handler that is
        // async-signal-safe (module docs), SA_SIGINFO for its three-argument form, and
        // the four signals masked while it runs so that it never runs twice at once on
        // one thread. `old` receives the previous disposition.
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN {
                continue;
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal
                as extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)
                as libc::sighandler_t;
            act.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut act.sa_mask);
            for s in HANDLED {
                libc::sigaddset(&mut act.sa_mask, s);
            }
            libc::sigaction(sig, &act, std::ptr::null_mut());
        }
    }
}

#[cfg(not(unix))]
pub fn install() {}

#[cfg(unix)]
extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    arrowquant_std::temp_files::remove_all();
    let (name, code): (&[u8], i32) = match sig {
        libc::SIGINT => (b"SIGINT", 130),
        libc::SIGTERM => (b"SIGTERM", 143),
        libc::SIGHUP => (b"SIGHUP", 129),
        libc::SIGABRT => {
            write_err(b"error: aborted (out of memory?); temporary files removed\n");
            // SAFETY: `_exit` is async-signal-safe and never returns.
            unsafe { libc::_exit(crate::exit::EXIT_ERROR) }
        }
        _ => {
            bus_error(info);
            // SAFETY: `_exit` is async-signal-safe and never returns.
            unsafe { libc::_exit(crate::exit::EXIT_ERROR) }
        }
    };
    write_err(b"\ninterrupted by ");
    write_err(name);
    write_err(b": temporary files removed, the previous output is unchanged\n");
    // SAFETY: `_exit` is async-signal-safe and never returns.
    unsafe { libc::_exit(code) }
}

/// The one-line message of a SIGBUS: the mapped file that shrank, if it is ours.
#[cfg(unix)]
fn bus_error(info: *mut libc::siginfo_t) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler; for
    // SIGBUS its `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    // SAFETY: as above.
    let addr = unsafe { (*info).si_addr } as usize;
    match arrowquant_std::mapped_files::file_at(addr) {
        Some(path) => {
            write_err(b"error: ");
            // SAFETY: `file_at` returns a leaked, NUL-terminated C string that is never
            // freed; `strlen` only reads it.
            let len = unsafe { libc::strlen(path) };
            // SAFETY: `path` is valid for `len` bytes (just measured).
            write_err(unsafe { std::slice::from_raw_parts(path.cast::<u8>(), len) });
            write_err(b": the file shrank while it was read (is a copy still in progress?); temporary files removed\n");
        }
        None => write_err(b"error: bus error (SIGBUS) reading a mapped file; temporary files removed\n"),
    }
}

/// `write(2)` to stderr, the whole of `bytes` or as much as goes (async-signal-safe).
#[cfg(unix)]
fn write_err(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a valid slice; `write` only reads it.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}
