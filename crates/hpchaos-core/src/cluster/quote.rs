//! Building remote command lines from argument lists: every argument is
//! quoted for a POSIX shell, so scenario text is never pasted into a shell
//! string (DESIGN.md, principle 6).

/// One argument, safe to pass through `sh -c`.
pub fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// A whole command line from its arguments.
pub fn command_line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_plain() {
        assert_eq!(
            command_line(&[
                "scontrol",
                "update",
                "nodename=ip-10-1-0-11",
                "reason=Action:Replace"
            ]),
            "scontrol update nodename=ip-10-1-0-11 reason=Action:Replace"
        );
    }

    #[test]
    fn shell_syntax_is_quoted_away() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("x; rm -rf /"), "'x; rm -rf /'");
    }

    #[test]
    fn quoted_arguments_survive_a_real_shell() {
        let args = ["a b", "it's", "$(echo no)", "`x`", "*", "\n", "\\"];
        let line = format!("printf '%s|' {}", command_line(&args));
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{}|", args.join("|"))
        );
    }
}
