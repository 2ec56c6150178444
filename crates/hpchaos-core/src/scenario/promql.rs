//! A PromQL expression read by promql-parser (GreptimeDB's parser of
//! Prometheus's grammar), for the checks before use: whether it parses at
//! all (`validate` says so, offline), and the metric and label names its
//! selectors use (a near miss of a name Prometheus knows is a typo: the
//! condition could never hold).

use promql_parser::parser::{self, Expr};

/// The metric and label names `query`'s selectors use (each once, in the
/// order met); `Err`: the parser's complaint.
pub fn names(query: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let expr = parser::parse(query)?;
    let mut metrics = Vec::new();
    let mut labels = Vec::new();
    walk(&expr, &mut metrics, &mut labels);
    Ok((metrics, labels))
}

/// Whether `query` parses; `Err`: the parser's complaint.
pub fn check(query: &str) -> Result<(), String> {
    parser::parse(query).map(|_| ())
}

fn push(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

fn selector(vs: &parser::VectorSelector, metrics: &mut Vec<String>, labels: &mut Vec<String>) {
    if let Some(name) = &vs.name {
        push(metrics, name);
    }
    let all = vs
        .matchers
        .matchers
        .iter()
        .chain(vs.matchers.or_matchers.iter().flatten());
    for m in all {
        if m.name == "__name__" {
            push(metrics, &m.value);
        } else {
            push(labels, &m.name);
        }
    }
}

fn walk(expr: &Expr, metrics: &mut Vec<String>, labels: &mut Vec<String>) {
    match expr {
        Expr::VectorSelector(vs) => selector(vs, metrics, labels),
        Expr::MatrixSelector(ms) => selector(&ms.vs, metrics, labels),
        Expr::Aggregate(a) => {
            walk(&a.expr, metrics, labels);
            if let Some(p) = &a.param {
                walk(p, metrics, labels);
            }
        }
        Expr::Unary(u) => walk(&u.expr, metrics, labels),
        Expr::Binary(b) => {
            walk(&b.lhs, metrics, labels);
            walk(&b.rhs, metrics, labels);
        }
        Expr::Paren(p) => walk(&p.expr, metrics, labels),
        Expr::Subquery(s) => walk(&s.expr, metrics, labels),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, metrics, labels)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_give_their_metric_and_label_names() {
        let (metrics, labels) = names(
            r#"count(slurm_node_status{nod="ip-10-1-0-14",status=~"drain.*"}) / count(slurm_node_status) > 0.02 and on() max_over_time(DCGM_FI_DEV_XID_ERRORS{Hostname=~"ip-.*"}[5m]) > 0"#,
        )
        .unwrap();
        assert_eq!(metrics, ["slurm_node_status", "DCGM_FI_DEV_XID_ERRORS"]);
        assert_eq!(labels, ["nod", "status", "Hostname"]);
    }

    #[test]
    fn what_does_not_parse_says_why() {
        assert!(check("up >").is_err());
        assert!(check("count(up").is_err());
        assert!(check("up == 0").is_ok());
    }
}
