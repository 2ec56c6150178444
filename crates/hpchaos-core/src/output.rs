//! Standard output for commands whose output is piped (`status | head`,
//! `history | less`): written whole, and a reader that went away (a closed
//! pipe) ends the output quietly instead of a panic. hpchaos keeps
//! SIGPIPE ignored (Rust's default), because a run writes to SSH sockets
//! and proxy commands whose end may close first.

use std::io::Write;

/// Writes `text` to standard output; a closed pipe or other write error
/// is not an error of the command (there is no one left to tell).
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// [`print`] with a newline.
pub fn println(text: &str) {
    print(&format!("{text}\n"));
}

/// Says `text` on standard error at once, a line of its own: what a run
/// must tell its operator now (a lost lease, a journal it cannot write), not
/// only in the journal. The library's one way to stderr besides the live
/// view: clippy's `print_stderr` keeps the `eprint!` macros to the CLI, and
/// these two functions, which write through `std::io` where that lint does
/// not look, are the exceptions it leaves (a `grep -rn "std::io::std"` of
/// the library finds only them and the live view).
pub fn say(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(format!("{text}\n").as_bytes())
        .and_then(|()| err.flush());
}
