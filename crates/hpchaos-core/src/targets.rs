//! Resolving a scenario's `target` against the live cluster: the pool's
//! candidates, minus controller, login and excluded nodes, picked with a
//! seeded shuffle (so a run can be repeated), under the blast-radius cap.

use crate::scenario::model::{Pick, Target};

/// Why a target selection cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(
        "the target pool is empty after excluding controller, login and excluded nodes (candidates were: {0})"
    )]
    Empty(String),
    #[error(
        "the target resolves to {count} nodes, above the blast-radius cap max_nodes: {cap}; refusing to run"
    )]
    AboveCap { count: usize, cap: u32 },
}

/// Picks targets from `candidates`; `never` are controller and login nodes.
pub fn select(
    target: &Target,
    candidates: &[String],
    never: &[String],
    seed: u64,
) -> Result<Vec<String>, TargetError> {
    let mut pool: Vec<String> = candidates
        .iter()
        .filter(|n| !never.contains(n) && !target.exclude.contains(n))
        .cloned()
        .collect();
    pool.sort();
    pool.dedup();
    if pool.is_empty() {
        return Err(TargetError::Empty(candidates.join(", ")));
    }
    let wanted = match target.pick {
        Pick::All => pool.len(),
        Pick::Count(n) => (n as usize).min(pool.len()),
        Pick::Percent(p) => (pool.len() * p as usize).div_ceil(100).max(1),
    };
    if wanted > target.max_nodes as usize {
        return Err(TargetError::AboveCap {
            count: wanted,
            cap: target.max_nodes,
        });
    }
    shuffle(&mut pool, seed);
    pool.truncate(wanted);
    pool.sort();
    Ok(pool)
}

/// Fisher-Yates with splitmix64: the same seed, the same pick.
fn shuffle(items: &mut [String], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Pool;

    fn target(pick: Pick, max_nodes: u32, exclude: &[&str]) -> Target {
        Target {
            pool: Pool::Partition("dev".into()),
            pick,
            exclude: exclude.iter().map(|s| (*s).to_owned()).collect(),
            max_nodes,
            seed: None,
        }
    }

    fn names(n: u8) -> Vec<String> {
        (11..11 + n).map(|i| format!("ip-10-1-0-{i}")).collect()
    }

    #[test]
    fn the_same_seed_picks_the_same_nodes() {
        let a = select(&target(Pick::Count(2), 2, &[]), &names(4), &[], 7).unwrap();
        let b = select(&target(Pick::Count(2), 2, &[]), &names(4), &[], 7).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn controllers_and_excluded_nodes_are_never_picked() {
        let never = vec!["ip-10-1-0-11".to_owned()];
        for seed in 0..20 {
            let picked = select(
                &target(Pick::All, 10, &["ip-10-1-0-12"]),
                &names(4),
                &never,
                seed,
            )
            .unwrap();
            assert_eq!(picked, vec!["ip-10-1-0-13", "ip-10-1-0-14"]);
        }
    }

    #[test]
    fn the_cap_refuses_a_wider_blast_radius() {
        let err = select(&target(Pick::Percent(50), 1, &[]), &names(4), &[], 1).unwrap_err();
        assert_eq!(err, TargetError::AboveCap { count: 2, cap: 1 });
        assert!(matches!(
            select(&target(Pick::All, 4, &[]), &[], &[], 1),
            Err(TargetError::Empty(_))
        ));
    }
}
