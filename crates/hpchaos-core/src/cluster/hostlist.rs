//! Slurm host lists (`ip-10-1-0-[11-12,14],ip-10-1-1-11`), the one
//! implementation the harness uses: expanding a job's node list, and the
//! node names in controller log messages. Our own, 60 lines: the one crate
//! for it (`hostlist` 0.3) builds on nom 6, which rustc warns a future
//! release will reject, and reads malformed lists leniently. Checked
//! against `scontrol show hostnames` in the lab test.

/// Why a host list could not be expanded; each names the list (and the
/// range) so the user can find it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostListError {
    #[error("an empty host list")]
    Empty,
    #[error("unbalanced brackets in host list `{list}`")]
    Unbalanced { list: String },
    #[error("an empty name in host list `{list}`")]
    EmptyName { list: String },
    /// Not numeric, backwards, or more than a million names.
    #[error("bad range `{range}` in host list `{list}`")]
    BadRange { range: String, list: String },
}

/// The host names a host list stands for, in order.
///
/// Errors: an empty list or name, unbalanced brackets, or a range that is
/// not numeric or runs backwards.
pub fn expand(list: &str) -> Result<Vec<String>, HostListError> {
    let list = list.trim();
    if list.is_empty() {
        return Err(HostListError::Empty);
    }
    let mut hosts = Vec::new();
    for item in split_outside_brackets(list)? {
        hosts.extend(expand_item(item, list)?);
    }
    Ok(hosts)
}

/// Splits on the commas that are not inside brackets.
fn split_outside_brackets(list: &str) -> Result<Vec<&str>, HostListError> {
    let unbalanced = || HostListError::Unbalanced {
        list: list.to_owned(),
    };
    let mut items = Vec::new();
    let (mut depth, mut start) = (0u32, 0);
    for (i, c) in list.char_indices() {
        match c {
            '[' if depth == 0 => depth = 1,
            ']' if depth == 1 => depth = 0,
            '[' | ']' => return Err(unbalanced()),
            ',' if depth == 0 => {
                items.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(unbalanced());
    }
    items.push(&list[start..]);
    if items.iter().any(|i| i.trim().is_empty()) {
        return Err(HostListError::EmptyName {
            list: list.to_owned(),
        });
    }
    Ok(items)
}

/// `prefix[ranges]suffix...`: every bracket group multiplies the names.
fn expand_item(item: &str, list: &str) -> Result<Vec<String>, HostListError> {
    let Some(open) = item.find('[') else {
        return Ok(vec![item.trim().to_owned()]);
    };
    let close = open
        + item[open..]
            .find(']')
            .ok_or_else(|| HostListError::Unbalanced {
                list: list.to_owned(),
            })?;
    let prefix = item[..open].trim();
    let rest = expand_item(&item[close + 1..], list)?;
    let mut out = Vec::new();
    for range in item[open + 1..close].split(',') {
        let bad = || HostListError::BadRange {
            range: range.to_owned(),
            list: list.to_owned(),
        };
        let (low, high) = range.split_once('-').unwrap_or((range, range));
        let width = low.len();
        let (from, to): (u64, u64) = (
            low.parse().map_err(|_| bad())?,
            high.parse().map_err(|_| bad())?,
        );
        if from > to || to - from > 1_000_000 {
            return Err(bad());
        }
        for n in from..=to {
            for tail in &rest {
                out.push(format!("{prefix}{n:0width$}{tail}"));
            }
        }
    }
    Ok(out)
}

/// Every one of `nodes` that `message` names, alone or in a host list
/// (`Nodes ip-10-1-0-[11-12] not responding`, `node=ip-10-1-0-12:`), in
/// the order of `nodes`.
pub fn nodes_named_in<'a>(message: &str, nodes: &'a [String]) -> Vec<&'a String> {
    let mut named = std::collections::BTreeSet::new();
    for word in message.split_whitespace() {
        // `key=value`, `node:NAME` and punctuation around a name or list.
        let word = word.rsplit_once('=').map_or(word, |(_, v)| v);
        let word = match word.split_once(':') {
            Some((key, value))
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphabetic()) =>
            {
                value
            }
            _ => word,
        };
        let word = word
            .trim_matches(|c: char| matches!(c, ',' | ':' | ';' | '.' | '(' | ')' | '"' | '\''));
        if word.is_empty() {
            continue;
        }
        let expanded = if word.contains('[') || word.contains(',') {
            expand(word).unwrap_or_else(|_| word.split(',').map(str::to_owned).collect())
        } else {
            vec![word.to_owned()]
        };
        named.extend(expanded);
    }
    nodes.iter().filter(|n| named.contains(*n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_every_shape_slurm_prints() {
        assert_eq!(
            expand("ip-10-1-0-[11-12]").unwrap(),
            ["ip-10-1-0-11", "ip-10-1-0-12"]
        );
        assert_eq!(
            expand("ip-10-1-0-[11-12,14],ip-10-1-1-11").unwrap(),
            [
                "ip-10-1-0-11",
                "ip-10-1-0-12",
                "ip-10-1-0-14",
                "ip-10-1-1-11"
            ]
        );
        assert_eq!(
            expand("gpu[008-010]").unwrap(),
            ["gpu008", "gpu009", "gpu010"]
        );
        assert_eq!(expand("ip-10-1-0-11").unwrap(), ["ip-10-1-0-11"]);
        assert_eq!(
            expand("a[1-2]b[3-4]").unwrap(),
            ["a1b3", "a1b4", "a2b3", "a2b4"]
        );
        assert_eq!(expand("n[9-10]").unwrap(), ["n9", "n10"]);
        for bad in ["bad[1-", "bad]1[", "", "x[3-1]", "x[a-b]", "a,,b", "x[[1]]"] {
            assert!(expand(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn field_case_06_every_target_in_a_host_list_gets_the_event() {
        let targets: Vec<String> = ["ip-10-1-0-11", "ip-10-1-0-12", "ip-10-1-1-11"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let named = |m: &str| -> Vec<&str> {
            nodes_named_in(m, &targets)
                .into_iter()
                .map(String::as_str)
                .collect()
        };
        assert_eq!(
            named("error: Nodes ip-10-1-0-[11-12] not responding"),
            ["ip-10-1-0-11", "ip-10-1-0-12"]
        );
        assert_eq!(
            named("error: Nodes ip-10-1-0-[11-12] not responding, setting DOWN"),
            ["ip-10-1-0-11", "ip-10-1-0-12"]
        );
        assert_eq!(
            named("error: Nodes ip-10-1-0-11,ip-10-1-1-11 not responding, setting DOWN"),
            ["ip-10-1-0-11", "ip-10-1-1-11"]
        );
        assert_eq!(
            named("update_node: node ip-10-1-0-12 reason set to: Action:Replace"),
            ["ip-10-1-0-12"]
        );
        assert_eq!(
            named("_slurm_rpc_update_node: nodename=ip-10-1-0-12:"),
            ["ip-10-1-0-12"]
        );
        // Every shape slurmctld names a node in (SchedMD/slurm node_mgr.c,
        // agent.c, job_mgr.c messages): `node=X`, `Node=X`, `node:X`,
        // quoted, before a colon or a comma, in parentheses.
        for line in [
            "_slurm_rpc_node_registration node=ip-10-1-0-12: Invalid argument",
            "_slurm_rpc_epilog_complete: epilog error JobId=7 Node=ip-10-1-0-12 Err=1",
            "agent/is_node_resp: node:ip-10-1-0-12 RPC:REQUEST_PING : Connection refused",
            "Still waiting for node 'ip-10-1-0-12' to power off",
            "Bad node list in REBOOT_NODES request: \"ip-10-1-0-12\"",
            "Invalid data for node ip-10-1-0-12: procs=2",
            "Node ip-10-1-0-12 rebooted, killing missing step 7.0",
            "Batch completion for JobId=7 sent from wrong node (ip-10-1-0-12 rather than ip-10-1-0-13)",
        ] {
            assert_eq!(named(line), ["ip-10-1-0-12"], "{line}");
        }
        // A longer name that starts like a target is not the target.
        assert!(named("node ip-10-1-0-111 state set to IDLE").is_empty());
    }
}
