//! Everything the executor does differently per operating system, behind one set of names.
//!
//! `exec::process` and `exec::supervise` call only what this module exports: the interpreter
//! table, `PATH` lookup, private script files, the base environment, user switching, and the
//! process group that timeout and kill terminate as a whole. Unix (Linux, macOS) is built and
//! tested here; the Windows module mirrors the same names and is not compiled on this machine.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

/// How a shell runs a script file: `<program> <leading_args…> <script path>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interpreter {
    /// Program name looked up on the execution's `PATH`.
    pub(crate) program: &'static str,
    /// Arguments placed before the script path.
    pub(crate) leading_args: &'static [&'static str],
    /// File name the script is staged under; some interpreters insist on an extension.
    pub(crate) script_name: &'static str,
}
