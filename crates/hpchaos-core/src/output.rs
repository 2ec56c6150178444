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
