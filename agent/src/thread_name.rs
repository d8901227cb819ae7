//! `pthread_setname_np` for static musl builds. musl's own formats a `/proc/self/task/N/comm` path with
//! `snprintf`, which links its whole printf (about 10 KB on mipsel) into a program that never uses it
//! otherwise. std calls it only to name the calling thread (`thread::Builder::name`, which the agent
//! does not use), and `prctl(PR_SET_NAME)` does that directly. Another thread's name is refused, as
//! there is no way without the path; nothing in the agent asks for it. Defined here, in the program
//! (not the library), the linker takes it instead of libc.a's.

use nix::libc::{c_char, c_int, pthread_t};

#[no_mangle]
pub extern "C" fn pthread_setname_np(thread: pthread_t, name: *const c_char) -> c_int {
    // SAFETY: pthread_self has no preconditions; PR_SET_NAME reads at most 16 bytes of the
    // NUL-terminated name the caller passes, as pthread_setname_np's contract requires of it.
    unsafe {
        if thread != nix::libc::pthread_self() {
            return nix::libc::EPERM;
        }
        if nix::libc::prctl(nix::libc::PR_SET_NAME, name) == 0 {
            0
        } else {
            *nix::libc::__errno_location()
        }
    }
}
