//! The cluster's monitoring, read: a scenario's monitoring expectations
//! (PromQL conditions, Alertmanager alerts) asked of Prometheus and
//! Alertmanager (`client`), each sighting timed by the monitoring's own
//! clock, and judged at the end against its deadline like a phase. A
//! condition never seen is a blind spot: the monitoring never saw the
//! fault. The watch reads it through `observe/monitoring.rs`; results go
//! back out through `publish/`.

pub mod blind_spot;
pub mod client;
pub mod expect;
pub mod stop;

use chrono::{DateTime, Utc};

use crate::journal::PhaseVerdict;
use crate::profile::{Endpoint, Monitoring};
use crate::scenario::model::MonitoringExpectation;
use client::{Client, MonitoringError};
use expect::{Kind, Sighting, Watch};

/// Where one watch stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// Not seen yet.
    Open,
    /// Seen at the monitoring's own time.
    Seen(Sighting),
    /// Already true at the injection (an alert firing since before it, a
    /// condition holding at its first step): it cannot time this fault.
    HeldBefore(Sighting),
}

/// What a poll found that the journal should say.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    Seen { watch: usize, sighting: Sighting },
    HeldBefore { watch: usize, sighting: Sighting },
    Unread { watch: usize, error: String },
}

/// One expectation's verdict, for the journal and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub name: String,
    pub query: String,
    pub source: &'static str,
    pub within: crate::duration::Duration,
    pub seen_at: Option<DateTime<Utc>>,
    pub verdict: PhaseVerdict,
    pub detail: String,
    /// A blind spot: the monitoring could be read and never saw the fault
    /// on some target.
    pub blind_spot: bool,
    /// An alert fired, and Alertmanager suppressed it: nobody was paged.
    pub muted: bool,
}

/// A scenario's monitoring expectations under watch (cloned into the
/// task that polls, and back).
#[derive(Clone)]
pub struct Monitor {
    pub watches: Vec<Watch>,
    pub standing: Vec<Standing>,
    injected_at: DateTime<Utc>,
    /// The last error said per watch, so a steady failure is said once.
    said: Vec<Option<String>>,
    /// The first error each watch met, kept after the monitoring answers
    /// again: a condition unseen after an outage says so.
    outage: Vec<Option<String>>,
    /// Why a target went unseen, by target name, from Prometheus's `up`
    /// (`explain_blind_spots`).
    why: std::collections::BTreeMap<String, String>,
    /// Per watch: the alert found firing after the injection but
    /// suppressed by Alertmanager (silenced, inhibited or muted), first
    /// seen.
    suppressed: Vec<Option<expect::Suppressed>>,
}

/// Why the monitoring's expectations may not be injected against: each
/// one that cannot be asked, or already holds, in words (sorted, each once).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("; "))]
pub struct NotReady {
    pub problems: Vec<String>,
}

impl Monitor {
    /// `None` when the scenario expects nothing of the monitoring.
    pub fn new(
        expectations: &[MonitoringExpectation],
        targets: &[String],
        injected_at: DateTime<Utc>,
    ) -> Option<Monitor> {
        let watches = expect::plan(expectations, targets);
        if watches.is_empty() {
            return None;
        }
        let n = watches.len();
        Some(Monitor {
            watches,
            standing: vec![Standing::Open; n],
            injected_at,
            said: vec![None; n],
            outage: vec![None; n],
            why: Default::default(),
            suppressed: vec![None; n],
        })
    }

    /// Before the injection: every expectation can be asked and none holds
    /// already. Each PromQL runs once (a typo, a wrong port or a scalar is
    /// said now, not after the fault) and must return nothing yet; each
    /// alert must not be firing yet for its labels, and, when the profile
    /// has Prometheus, must be one of its alerting rules. `Ok` says what
    /// was asked; `Err` why the scenario must not inject.
    pub async fn ready(&self, client: &Client, endpoints: &Monitoring) -> Result<String, NotReady> {
        let mut readiness = Readiness::read(client, endpoints).await;
        for watch in &self.watches {
            match &watch.kind {
                Kind::PromQl(_) => readiness.promql(watch).await,
                Kind::Alert { .. } => readiness.alert(watch).await,
            }
        }
        let mut problems = readiness.problems;
        problems.sort();
        problems.dedup();
        if problems.is_empty() {
            Ok(format!(
                "{} monitoring expectation(s) askable, none true yet",
                self.watches.len()
            ))
        } else {
            Err(NotReady { problems })
        }
    }

    /// Asks the monitoring about every open watch: Prometheus for the
    /// condition over `[injection, now]` (so a sample missed between polls
    /// is still found, at its own step), Alertmanager for the alert.
    pub async fn poll(
        &mut self,
        client: &Client,
        endpoints: &Monitoring,
        now: DateTime<Utc>,
    ) -> Vec<Update> {
        let mut updates = Vec::new();
        let start = unix_seconds(self.injected_at);
        let end = unix_seconds(now).max(start);
        let step = expect::step_for(end - start);
        let open: Vec<usize> = (0..self.watches.len())
            .filter(|i| self.standing[*i] == Standing::Open)
            .collect();
        let asks = open.iter().map(|&i| {
            let watch = &self.watches[i];
            async move {
                let mut suppressed = None;
                let answer = match &watch.kind {
                    Kind::PromQl(query) => match &endpoints.prometheus {
                        Some(endpoint) => {
                            first_true_between(client, endpoint, query, start, end, step).await
                        }
                        None => Err(MonitoringError::NotConfigured("prometheus")),
                    },
                    Kind::Alert { name, labels } => match &endpoints.alertmanager {
                        Some(endpoint) => {
                            firing_alert(client, endpoint, name, labels).await.map(|m| {
                                suppressed = m.suppressed;
                                m.active
                            })
                        }
                        None => Err(MonitoringError::NotConfigured("alertmanager")),
                    },
                };
                (i, answer, suppressed)
            }
        });
        let mut answers = Vec::new();
        for (i, answer, suppressed) in futures::future::join_all(asks).await {
            let answer = self.take_suppressed(i, answer, suppressed, now);
            answers.push((i, answer));
        }
        // A condition first true at a step: the sample came within that
        // step; asked again at 100 ms steps over it, its own time shows.
        for (i, answer) in answers.iter_mut() {
            if let (Kind::PromQl(query), Ok(Some(sighting)), Some(endpoint)) =
                (&self.watches[*i].kind, &*answer, &endpoints.prometheus)
                && step > 0.1
            {
                let end = unix_seconds(sighting.at);
                let from = (end - step).max(start);
                let finer = first_true_between(client, endpoint, query, from, end, 0.1)
                    .await
                    .ok()
                    .flatten();
                if let Some(finer) = finer.filter(|f| f.at <= sighting.at) {
                    *answer = Ok(Some(finer));
                }
            }
        }
        for (i, answer) in answers {
            updates.extend(self.take_answer(i, answer));
        }
        updates
    }

    /// Folds watch `i`'s answer into where it stands: seen, held before
    /// the injection, still open, or unreadable (kept as an outage). The
    /// update the journal should say, if any: an error is said once while
    /// it lasts.
    fn take_answer(
        &mut self,
        i: usize,
        answer: Result<Option<Sighting>, MonitoringError>,
    ) -> Option<Update> {
        match answer.map_err(|e| e.to_string()) {
            Ok(Some(sighting)) => {
                self.said[i] = None;
                // Held at the injection already: an alert that started
                // before it, a condition true at the window's first step.
                let before = match self.watches[i].kind {
                    Kind::Alert { .. } => sighting.at < self.injected_at,
                    Kind::PromQl(_) => {
                        sighting.at.timestamp_millis() <= self.injected_at.timestamp_millis() + 1
                    }
                };
                if before {
                    self.standing[i] = Standing::HeldBefore(sighting.clone());
                    Some(Update::HeldBefore { watch: i, sighting })
                } else {
                    self.standing[i] = Standing::Seen(sighting.clone());
                    Some(Update::Seen { watch: i, sighting })
                }
            }
            Ok(None) => {
                self.said[i] = None;
                None
            }
            Err(error) => {
                if self.outage[i].is_none() {
                    self.outage[i] = Some(error.clone());
                }
                if self.said[i].as_deref() != Some(error.as_str()) {
                    self.said[i] = Some(error.clone());
                    Some(Update::Unread { watch: i, error })
                } else {
                    None
                }
            }
        }
    }

    /// After the watch, for each target never seen (not for want of an
    /// answer, and not because Alertmanager suppressed its alert): asks
    /// Prometheus what its `up` series that name the node (by name, or by
    /// its address from `addresses` or HyperPod's `ip-A-B-C-D` naming) did
    /// since the injection, so the blind spot says why: nothing scrapes the
    /// node, an exporter was down or gone at the injection, or its scrapes
    /// were up then and the condition did not match. Three instant queries
    /// for all targets (`min_over_time`, `count_over_time` and `up`), then
    /// one `query_range`, concurrently, per scrape found down or gone.
    /// Needs `monitoring.prometheus`; a failed request leaves the blind
    /// spot without its why.
    pub async fn explain_blind_spots(
        &mut self,
        client: &Client,
        endpoints: &Monitoring,
        addresses: &std::collections::BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) {
        let Some(prometheus) = &endpoints.prometheus else {
            return;
        };
        let mut targets: Vec<&str> = (0..self.watches.len())
            .filter(|&i| {
                self.standing[i] == Standing::Open
                    && self.said[i].is_none()
                    && self.suppressed[i].is_none()
            })
            .filter_map(|i| self.watches[i].target.as_deref())
            .collect();
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return;
        }
        let start = unix_seconds(self.injected_at);
        let end = unix_seconds(now).max(start + 1.0);
        let watched = (end - start).ceil();
        let at = format!("{end:.3}");
        let instant = |query: String| {
            let at = at.clone();
            async move {
                client
                    .get(
                        prometheus,
                        "/api/v1/query",
                        &[("query", query.as_str()), ("time", &at)],
                    )
                    .await
                    .ok()
            }
        };
        let (min, count, up) = futures::join!(
            instant(format!("min_over_time(up[{watched}s])")),
            instant(format!("count_over_time(up[{watched}s])")),
            instant("up".to_owned()),
        );
        let (Some(min), Some(count), Some(up)) = (min, count, up) else {
            return;
        };
        let Ok(all) = blind_spot::read_scrapes(&blind_spot::UpAnswers {
            min: &min,
            count: &count,
            now: &up,
            watched,
        }) else {
            return;
        };
        let step = expect::step_for(end - start);
        let mut why = Vec::new();
        for target in targets {
            let address = addresses
                .get(target)
                .cloned()
                .or_else(|| crate::cluster::ssh::address_from_name(target));
            let scrapes = blind_spot::scrapes_of(&all, target, address.as_deref());
            let asks = scrapes.iter().map(|scrape| async move {
                if scrape.min_up >= 1.0 && scrape.present_at_end {
                    return None;
                }
                let body = query_range(client, prometheus, &scrape.selector(), start, end, step)
                    .await
                    .ok()?;
                Some(blind_spot::down_of(&body, start, end, step))
            });
            let downs = futures::future::join_all(asks).await;
            why.push((
                target.to_owned(),
                blind_spot::explain(
                    target,
                    address.as_deref(),
                    &scrapes,
                    &downs,
                    end - start,
                    step,
                ),
            ));
        }
        self.why.extend(why);
    }

    /// An alert's answer with what Alertmanager suppressed folded in:
    /// suppressed after the injection is kept for the verdict (nobody was
    /// paged, yet); suppressed since before it stands as the answer (held
    /// before, as an active one would); active after having been
    /// suppressed is timed at `now`, when it was first seen paging, not at
    /// its `startsAt`.
    fn take_suppressed(
        &mut self,
        i: usize,
        mut answer: Result<Option<Sighting>, MonitoringError>,
        suppressed: Option<expect::Suppressed>,
        now: DateTime<Utc>,
    ) -> Result<Option<Sighting>, MonitoringError> {
        match suppressed {
            Some(muted) if muted.sighting.at >= self.injected_at => {
                // The first suppression seen is kept.
                self.suppressed[i].get_or_insert(muted);
            }
            Some(muted) => {
                if let Ok(active @ None) = &mut answer {
                    *active = Some(muted.with_reason());
                }
            }
            None => {}
        }
        if let (Ok(Some(active)), Some(muted)) = (&mut answer, &self.suppressed[i])
            && active.at < now
        {
            active.detail = format!(
                "{} (paged when seen active at {}; it fired at {}, {} until then)",
                active.detail,
                now.format("%H:%M:%S%.3f"),
                muted.sighting.at.format("%H:%M:%S%.3f"),
                muted.by
            );
            active.at = now;
        }
        answer
    }

    /// Seconds from the injection to `at`, to the millisecond.
    fn since_injection(&self, at: DateTime<Utc>) -> f64 {
        (at - self.injected_at).num_milliseconds() as f64 / 1000.0
    }

    /// Whether every watch is decided: seen, held before, or past its
    /// deadline by `grace` (a scrape and a poll late) without being seen.
    pub fn settled(&self, now: DateTime<Utc>, grace: std::time::Duration) -> bool {
        let grace = chrono::TimeDelta::from_std(grace).unwrap_or_default();
        self.watches
            .iter()
            .zip(&self.standing)
            .all(|(watch, standing)| {
                *standing != Standing::Open
                    || now > self.injected_at + watch.within.as_chrono() + grace
            })
    }

    /// Each expectation's verdict: seen on every target within its
    /// deadline is met (timed by the latest target), after it missed,
    /// never on some target not reached (the monitoring never saw the
    /// fault there), true before the injection not reached either.
    pub fn judge(&self) -> Vec<Judged> {
        let mut names: Vec<&str> = Vec::new();
        for watch in &self.watches {
            if !names.contains(&watch.name.as_str()) {
                names.push(&watch.name);
            }
        }
        names.into_iter().map(|name| self.judge_one(name)).collect()
    }

    /// The verdict of the expectation `name`, over all its watches (one
    /// per target for a `$target` expectation).
    fn judge_one(&self, name: &str) -> Judged {
        let rows: Vec<(&Watch, &Standing)> = self
            .watches
            .iter()
            .zip(&self.standing)
            .filter(|(w, _)| w.name == name)
            .collect();
        let first = rows[0].0;
        let query = first.template.clone();
        // Open watches of this expectation: unseen, or fired but
        // suppressed by Alertmanager (seen by the monitoring, and
        // still nobody was paged).
        let open: Vec<usize> = (0..self.watches.len())
            .filter(|&i| self.watches[i].name == name && self.standing[i] == Standing::Open)
            .collect();
        let (muted, unseen): (Vec<usize>, Vec<usize>) = open
            .into_iter()
            .partition(|&i| self.suppressed[i].is_some());
        let muted_note = self.muted_note(&muted);
        let and_muted = if muted.is_empty() {
            String::new()
        } else {
            format!("; {muted_note}")
        };
        // Why a watch was never seen, when the monitoring itself
        // could not be read: not a blind spot, a broken question.
        let errors: Vec<String> = unseen
            .iter()
            .filter_map(|&i| self.said[i].clone())
            .collect();
        // Unreadable for a while: the blind spot may be that.
        let outage = unseen
            .iter()
            .find_map(|&i| self.outage[i].clone())
            .map(|o| {
                format!("; the monitoring could not be read for a while during the watch: {o}")
            })
            .unwrap_or_default();
        let unseen: Vec<String> = unseen.into_iter().map(|i| self.target_of(i)).collect();
        let latest = rows
            .iter()
            .filter_map(|(w, s)| match s {
                Standing::Seen(seen) => Some((seen, *w)),
                _ => None,
            })
            .max_by_key(|(seen, _)| seen.at);
        let within = first.within;
        let blind_spot = !unseen.is_empty() && errors.is_empty();
        let muted_any = !muted.is_empty();
        let (seen_at, verdict, detail) = self.verdict(Findings {
            within,
            unseen,
            muted: !muted.is_empty(),
            muted_note,
            and_muted,
            errors,
            outage,
            seen_note: self.seen_note(&rows),
            before: held_before(&rows),
            latest,
        });
        Judged {
            name: name.to_owned(),
            query,
            source: first.kind.source(),
            within,
            seen_at,
            verdict,
            detail,
            blind_spot,
            muted: muted_any,
        }
    }

    /// Where a watch looks: its target, or "the cluster" for an
    /// expectation about the whole cluster.
    fn target_of(&self, i: usize) -> String {
        self.watches[i]
            .target
            .clone()
            .unwrap_or_else(|| "the cluster".into())
    }

    /// For the watches in `muted` (the alert fired after the injection but
    /// Alertmanager suppressed it): on which target, when, and why; empty
    /// when there are none.
    fn muted_note(&self, muted: &[usize]) -> String {
        if muted.is_empty() {
            String::new()
        } else {
            let each: Vec<String> = muted
                .iter()
                .filter_map(|&i| {
                    let m = self.suppressed[i].as_ref()?.with_reason();
                    Some(format!(
                        "on {} at {} (+{:.1}s): {}",
                        self.target_of(i),
                        m.at.format("%H:%M:%S%.3f"),
                        self.since_injection(m.at),
                        m.detail
                    ))
                })
                .collect();
            format!(
                "the alert fired but Alertmanager suppressed it, nobody was paged: {}",
                each.join("; ")
            )
        }
    }

    /// For an expectation over several targets, when each target was seen
    /// (` (seen on NODE at +Ns, ...)`); empty otherwise.
    fn seen_note(&self, rows: &[(&Watch, &Standing)]) -> String {
        // Several targets: when each one was seen.
        let seen_on: Vec<String> = rows
            .iter()
            .filter_map(|(w, s)| match (s, &w.target) {
                (Standing::Seen(seen), Some(t)) if rows.len() > 1 => {
                    Some(format!("{t} at +{:.1}s", self.since_injection(seen.at)))
                }
                _ => None,
            })
            .collect();
        if seen_on.is_empty() {
            String::new()
        } else {
            format!(" (seen on {})", seen_on.join(", "))
        }
    }

    /// An expectation's seen-at time, verdict and detail from what its
    /// watches came to: suppressed, unreadable, never seen (a blind spot),
    /// held before the injection, or seen in time or late.
    fn verdict(&self, findings: Findings<'_>) -> (Option<DateTime<Utc>>, PhaseVerdict, String) {
        let Findings {
            within,
            unseen,
            muted,
            muted_note,
            and_muted,
            errors,
            outage,
            seen_note,
            before,
            latest,
        } = findings;
        if unseen.is_empty() && muted {
            (
                None,
                PhaseVerdict::NotReached,
                format!("{muted_note}{seen_note}"),
            )
        } else if !unseen.is_empty() && !errors.is_empty() {
            let mut errors = errors;
            errors.dedup();
            (
                None,
                PhaseVerdict::NotReached,
                format!(
                    "could not ask the monitoring about {}: {}{seen_note}{and_muted}",
                    unseen.join(", "),
                    errors.join("; ")
                ),
            )
        } else if !unseen.is_empty() {
            let why: Vec<String> = unseen
                .iter()
                .filter_map(|t| Some(format!("{t}: {}", self.why.get(t)?)))
                .collect();
            let why = if why.is_empty() {
                String::new()
            } else {
                format!("; why: {}", why.join("; "))
            };
            (
                None,
                PhaseVerdict::NotReached,
                format!(
                    "the monitoring never saw the fault: not seen within {within} on {}{seen_note}{outage}{why}{and_muted}",
                    unseen.join(", "),
                ),
            )
        } else if !before.is_empty() {
            (
                None,
                PhaseVerdict::NotReached,
                format!("cannot time this fault: {}", before.join("; ")),
            )
        } else if let Some((seen, watch)) = latest {
            let late = seen.at > self.injected_at + within.as_chrono();
            (
                Some(seen.at),
                if late {
                    PhaseVerdict::Missed
                } else {
                    PhaseVerdict::Met
                },
                format!(
                    "{}{}{seen_note}",
                    seen.detail,
                    match &watch.target {
                        Some(t) if seen.detail.contains(t.as_str()) => String::new(),
                        _ => on_target(watch),
                    }
                ),
            )
        } else {
            (None, PhaseVerdict::NotReached, "nothing to judge".into())
        }
    }
}

/// What the watches of one expectation came to, for its verdict
/// (`Monitor::verdict`).
struct Findings<'r> {
    within: crate::duration::Duration,
    /// The targets never seen (and whose alert was not suppressed either).
    unseen: Vec<String>,
    /// Whether an alert fired but Alertmanager suppressed it.
    muted: bool,
    muted_note: String,
    /// `muted_note` after a `; `, or empty.
    and_muted: String,
    /// Why unseen watches could not be read, when they could not.
    errors: Vec<String>,
    /// The first error an unseen watch met during the watch, after a
    /// `; `, or empty: the blind spot may be that outage.
    outage: String,
    seen_note: String,
    /// Per watch true before the injection, since when.
    before: Vec<String>,
    /// The latest sighting, and its watch.
    latest: Option<(&'r Sighting, &'r Watch)>,
}

/// ` on TARGET` for a watch about one target, else empty.
fn on_target(w: &Watch) -> String {
    w.target
        .as_deref()
        .map(|t| format!(" on {t}"))
        .unwrap_or_default()
}

/// Per watch whose condition held already at the injection: since when
/// (and on which target); such a watch cannot time the fault.
fn held_before(rows: &[(&Watch, &Standing)]) -> Vec<String> {
    rows.iter()
        .filter_map(|(w, s)| match s {
            Standing::HeldBefore(seen) => Some(format!(
                "held since {} (before the injection){}",
                seen.at.format("%H:%M:%S%.3f"),
                on_target(w)
            )),
            _ => None,
        })
        .collect()
}

/// What `Monitor::ready` has learned of the monitoring: the names
/// Prometheus knows (metrics and labels, read once up front; alerting
/// rules, read once when an alert is first checked) and the problems found
/// so far.
pub(crate) struct Readiness<'c> {
    client: &'c Client,
    endpoints: &'c Monitoring,
    metric_names: Option<Vec<String>>,
    label_names: Option<Vec<String>>,
    rules: Option<Vec<String>>,
    pub(crate) problems: Vec<String>,
}

impl<'c> Readiness<'c> {
    /// Reads the metric and label names Prometheus knows, when the
    /// profile has Prometheus; `None` for each it did not answer.
    pub(crate) async fn read(client: &'c Client, endpoints: &'c Monitoring) -> Readiness<'c> {
        // The names Prometheus knows: a metric or label name missing from
        // them but close to one of them is a typo (one merely missing may
        // appear with the fault, as `ALERTS` does).
        let (mut metric_names, mut label_names): (Option<Vec<String>>, Option<Vec<String>>) =
            (None, None);
        if let Some(prometheus) = &endpoints.prometheus {
            metric_names = client
                .get(prometheus, "/api/v1/label/__name__/values", &[])
                .await
                .ok()
                .and_then(|body| expect::name_list(&body).ok());
            label_names = client
                .get(prometheus, "/api/v1/labels", &[])
                .await
                .ok()
                .and_then(|body| expect::name_list(&body).ok());
        }
        Readiness {
            client,
            endpoints,
            metric_names,
            label_names,
            rules: None,
            problems: Vec::new(),
        }
    }

    /// Checks a PromQL watch: Prometheus is configured, every metric it
    /// selects exists (or is not a near miss of one), and it is askable
    /// and returns nothing yet.
    async fn promql(&mut self, watch: &Watch) {
        let client = self.client;
        let Kind::PromQl(query) = &watch.kind else {
            return;
        };
        let Some(endpoint) = self.promql_names(&watch.name, query) else {
            return;
        };
        let answer = client
            .get(endpoint, "/api/v1/query", &[("query", query.as_str())])
            .await
            .map_err(|e| e.to_string())
            .and_then(|body| expect::instant_result(&body).map_err(|e| e.to_string()));
        match answer {
            Err(e) => self.problems.push(format!("{}: cannot ask `{query}`: {e}", watch.name)),
            Ok(Some(series)) => self.problems.push(format!(
                "{}: `{query}` already returns {series} before the injection: it cannot time this fault",
                watch.name
            )),
            Ok(None) => {}
        }
    }

    /// Checks an alert watch: Alertmanager is configured, the alert is one
    /// of Prometheus's alerting rules (when the profile has Prometheus),
    /// its label names are not near misses, and it is not firing yet.
    async fn alert(&mut self, watch: &Watch) {
        let client = self.client;
        let Kind::Alert { name, labels } = &watch.kind else {
            return;
        };
        let on = watch
            .target
            .as_deref()
            .map(|t| format!(" for {t}"))
            .unwrap_or_default();
        let Some(endpoint) = self.alert_names(&watch.name, name, labels).await else {
            return;
        };
        // Suppressed counts too: the fault's alert would be the
        // same one, started before the injection.
        match firing_alert(client, endpoint, name, labels).await.map(|m| {
            m.active.or(m.suppressed.map(|s| Sighting {
                detail: format!("{}, {}", s.sighting.detail, s.by),
                ..s.sighting
            }))
        }) {
            Err(e) => self.problems.push(format!("{}: cannot ask Alertmanager: {e}", watch.name)),
            Ok(Some(firing)) => self.problems.push(format!(
                "{}: alert `{name}` is already firing{on} since {} ({}): it cannot time this fault; run again once it resolves",
                watch.name,
                firing.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                firing.detail
            )),
            Ok(None) => {}
        }
    }
}

impl<'c> Readiness<'c> {
    /// The names check of a PromQL condition (`row` its name in words):
    /// Prometheus is configured and every metric it selects exists (or is
    /// not a near miss of one). Prometheus's endpoint when it can be asked.
    pub(crate) fn promql_names(&mut self, row: &str, query: &str) -> Option<&'c Endpoint> {
        let Some(endpoint) = &self.endpoints.prometheus else {
            self.problems
                .push("the profile has no monitoring.prometheus".to_owned());
            return None;
        };
        // Read by the PromQL parser; one it cannot read is left to
        // Prometheus, which says why when it is asked.
        let (metrics, labels) = crate::scenario::promql::names(query)
            .unwrap_or_else(|_| (expect::selected_metrics(query), Vec::new()));
        for metric in metrics {
            if let Some(near) = typo(&metric, &self.metric_names) {
                self.problems.push(format!(
                    "{row}: Prometheus has no metric `{metric}` (did you mean `{near}`?): the condition could never hold"
                ));
            }
        }
        for label in labels {
            if let Some(near) = typo(&label, &self.label_names) {
                self.problems.push(format!(
                    "{row}: no series carries a label `{label}` (did you mean `{near}`?): the condition could never hold"
                ));
            }
        }
        Some(endpoint)
    }

    /// The names check of an alert: Alertmanager is configured, the alert
    /// is one of Prometheus's alerting rules (when the profile has
    /// Prometheus), its label names are not near misses. Alertmanager's
    /// endpoint when it can be asked.
    pub(crate) async fn alert_names(
        &mut self,
        row: &str,
        name: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> Option<&'c Endpoint> {
        let (client, endpoints) = (self.client, self.endpoints);
        let Some(endpoint) = &endpoints.alertmanager else {
            self.problems
                .push("the profile has no monitoring.alertmanager".to_owned());
            return None;
        };
        if let Some(prometheus) = &endpoints.prometheus {
            if self.rules.is_none() {
                self.rules = client
                    .get(prometheus, "/api/v1/rules", &[("type", "alert")])
                    .await
                    .ok()
                    .and_then(|body| expect::alert_rule_names(&body).ok());
            }
            if let Some(known) = self.rules.as_ref().filter(|k| !k.iter().any(|n| n == name)) {
                let near = expect::did_you_mean(name, known)
                    .map(|k| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                self.problems.push(format!(
                    "{row}: Prometheus has no alerting rule `{name}`{near}: it could never fire"
                ));
                return None;
            }
        }
        for key in labels.keys() {
            if let Some(near) = typo(key, &self.label_names) {
                self.problems.push(format!(
                    "{row}: no series carries a label `{key}` (did you mean `{near}`?): the alert could never match"
                ));
            }
        }
        Some(endpoint)
    }
}

/// A name missing from what Prometheus knows but close to one of its
/// names: that name (a typo). `None` when the name is known, not close to
/// any, or Prometheus's names could not be read.
fn typo(name: &str, known: &Option<Vec<String>>) -> Option<String> {
    let known = known.as_ref()?;
    if known.iter().any(|k| k == name) {
        return None;
    }
    expect::did_you_mean(name, known).cloned()
}

/// `t` as Unix seconds, to the millisecond (Prometheus's time parameters).
fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// Prometheus's `query_range` of `query` from `start` to `end` (Unix
/// seconds, to the millisecond) every `step` seconds: the answer's body.
async fn query_range(
    client: &Client,
    endpoint: &crate::profile::Endpoint,
    query: &str,
    start: f64,
    end: f64,
    step: f64,
) -> Result<Vec<u8>, MonitoringError> {
    client
        .get(
            endpoint,
            "/api/v1/query_range",
            &[
                ("query", query),
                ("start", &format!("{start:.3}")),
                ("end", &format!("{end:.3}")),
                ("step", &format!("{step}")),
            ],
        )
        .await
}

/// The first instant `query` returned a series between `start` and `end`
/// (Unix seconds), asked every `step` seconds (`query_range`).
async fn first_true_between(
    client: &Client,
    endpoint: &crate::profile::Endpoint,
    query: &str,
    start: f64,
    end: f64,
    step: f64,
) -> Result<Option<Sighting>, MonitoringError> {
    let body = query_range(client, endpoint, query, start, end, step).await?;
    Ok(expect::first_true(&body)?)
}

/// The earliest active and the earliest suppressed alert `name` in
/// Alertmanager whose labels match `labels` (anchored patterns), with
/// their `startsAt`.
pub(crate) async fn firing_alert(
    client: &Client,
    endpoint: &crate::profile::Endpoint,
    name: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Result<expect::AlertMatch, MonitoringError> {
    let filter = format!("alertname=\"{name}\"");
    let body = client
        .get(endpoint, "/api/v2/alerts", &[("filter", &filter)])
        .await?;
    Ok(expect::matching_alerts(&body, name, labels)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn monitor() -> Monitor {
        let items: Vec<MonitoringExpectation> = vec![
            serde_saphyr::from_str("alert: GpuXidError\nlabels: {Hostname: $target}\nwithin: 60s")
                .unwrap(),
        ];
        let targets = vec!["a".to_owned(), "b".to_owned()];
        Monitor::new(&items, &targets, Utc.timestamp_opt(1000, 0).unwrap()).unwrap()
    }

    fn at(secs: i64) -> Sighting {
        Sighting {
            at: Utc.timestamp_opt(secs, 0).unwrap(),
            detail: "x".into(),
        }
    }

    #[test]
    fn every_target_must_be_seen_and_the_latest_times_it() {
        let mut m = monitor();
        m.standing[0] = Standing::Seen(at(1010));
        m.standing[1] = Standing::Seen(at(1030));
        let judged = m.judge();
        assert_eq!(judged.len(), 1);
        assert_eq!(judged[0].verdict, PhaseVerdict::Met);
        assert_eq!(judged[0].seen_at, Some(Utc.timestamp_opt(1030, 0).unwrap()));
        assert!(
            judged[0]
                .detail
                .ends_with(" on b (seen on a at +10.0s, b at +30.0s)"),
            "{}",
            judged[0].detail
        );
        m.standing[1] = Standing::Seen(at(1061));
        assert_eq!(m.judge()[0].verdict, PhaseVerdict::Missed);
    }

    #[test]
    fn a_target_never_seen_is_a_blind_spot() {
        let mut m = monitor();
        m.standing[0] = Standing::Seen(at(1010));
        let judged = m.judge();
        assert_eq!(judged[0].verdict, PhaseVerdict::NotReached);
        assert!(
            judged[0]
                .detail
                .contains("the monitoring never saw the fault")
        );
        assert!(
            judged[0].detail.ends_with("on b (seen on a at +10.0s)"),
            "{}",
            judged[0].detail
        );
        assert!(!m.settled(
            Utc.timestamp_opt(1061, 0).unwrap(),
            std::time::Duration::from_secs(2)
        ));
        assert!(m.settled(
            Utc.timestamp_opt(1063, 0).unwrap(),
            std::time::Duration::from_secs(2)
        ));
    }

    #[test]
    fn a_blind_spot_says_why_when_prometheus_told() {
        let mut m = monitor();
        m.standing[0] = Standing::Seen(at(1010));
        m.why.insert(
            "b".into(),
            "`up` was 0 for its dcgm scrape (b:9400) from the injection to the end of the watch (about 60s of 60s)"
                .into(),
        );
        let detail = &m.judge()[0].detail;
        assert!(
            detail.ends_with("; why: b: `up` was 0 for its dcgm scrape (b:9400) from the injection to the end of the watch (about 60s of 60s)"),
            "{detail}"
        );
    }

    fn muted(secs: i64, by: &str) -> expect::Suppressed {
        expect::Suppressed {
            sighting: Sighting {
                at: Utc.timestamp_opt(secs, 500_000_000).unwrap(),
                detail: "GpuXidError{Hostname=\"b\"}: Xid 48".into(),
            },
            by: by.into(),
        }
    }

    #[test]
    fn suppressed_alerts_are_folded_into_the_answer() {
        let mut m = monitor();
        let now = Utc.timestamp_opt(1030, 0).unwrap();
        // Suppressed after the injection: kept, nothing seen yet.
        let answer = m.take_suppressed(1, Ok(None), Some(muted(1012, "silenced by s1")), now);
        assert!(matches!(answer, Ok(None)));
        assert!(m.suppressed[1].is_some());
        // Then active (the silence expired): paged only now, not at the
        // alert's startsAt.
        let active = Sighting {
            at: Utc.timestamp_opt(1012, 500_000_000).unwrap(),
            detail: "GpuXidError{Hostname=\"b\"}: Xid 48".into(),
        };
        let seen = m
            .take_suppressed(1, Ok(Some(active)), None, now)
            .unwrap()
            .unwrap();
        assert_eq!(seen.at, now);
        assert!(
            seen.detail.ends_with("(paged when seen active at 00:17:10.000; it fired at 00:16:52.500, silenced by s1 until then)"),
            "{}",
            seen.detail
        );
        // Suppressed since before the injection: held before.
        let held = m.take_suppressed(0, Ok(None), Some(muted(900, "inhibited by f0")), now);
        let held = held.unwrap().unwrap();
        assert_eq!(held.at, Utc.timestamp_opt(900, 500_000_000).unwrap());
        assert!(
            held.detail.ends_with("(inhibited by f0)"),
            "{}",
            held.detail
        );
        assert!(m.suppressed[0].is_none());
    }

    #[test]
    fn unseen_and_suppressed_targets_are_each_said() {
        // a never seen, b fired suppressed.
        let mut m = monitor();
        m.suppressed[1] = Some(muted(1012, "silenced by s1"));
        let detail = m.judge()[0].detail.clone();
        assert!(
            detail.starts_with("the monitoring never saw the fault: not seen within 1m on a;"),
            "{detail}"
        );
        assert!(
            detail.ends_with("; the alert fired but Alertmanager suppressed it, nobody was paged: on b at 00:16:52.500 (+12.5s): GpuXidError{Hostname=\"b\"}: Xid 48 (silenced by s1)"),
            "{detail}"
        );
        // b's last poll failed: its error is not said of a, which is a
        // plain blind spot; a's own error makes a's question unanswered.
        m.said[1] = Some("b's error".into());
        let detail = m.judge()[0].detail.clone();
        assert!(!detail.contains("b's error"), "{detail}");
        m.said[0] = Some("a's error".into());
        let detail = m.judge()[0].detail.clone();
        assert!(
            detail.starts_with("could not ask the monitoring about a: a's error"),
            "{detail}"
        );
        assert!(detail.contains("nobody was paged: on b"), "{detail}");
    }

    #[test]
    fn a_suppressed_alert_is_not_a_blind_spot_but_nobody_was_paged() {
        let mut m = monitor();
        m.standing[0] = Standing::Seen(at(1010));
        m.suppressed[1] = Some(muted(1012, "silenced by a1b2"));
        let judged = &m.judge()[0];
        assert_eq!(judged.verdict, PhaseVerdict::NotReached);
        assert!(
            judged.detail.starts_with(
                "the alert fired but Alertmanager suppressed it, nobody was paged: on b at 00:16:52.500 (+12.5s): GpuXidError{Hostname=\"b\"}: Xid 48 (silenced by a1b2)"
            ),
            "{}",
            judged.detail
        );
        assert!(!judged.detail.contains("never saw"), "{}", judged.detail);
        // Paged on both targets after all: met, the suppressed sighting is
        // history.
        m.standing[1] = Standing::Seen(at(1020));
        assert_eq!(m.judge()[0].verdict, PhaseVerdict::Met);
    }

    #[test]
    fn a_question_the_monitoring_could_not_answer_is_said_as_such() {
        let mut m = monitor();
        m.standing[0] = Standing::Seen(at(1010));
        m.said[1] = Some("http://p:9093/api/v2/alerts: connection refused".into());
        let judged = m.judge();
        assert_eq!(judged[0].verdict, PhaseVerdict::NotReached);
        assert!(
            judged[0]
                .detail
                .starts_with("could not ask the monitoring about b: http://p:9093/api/v2/alerts: connection refused"),
            "{}",
            judged[0].detail
        );
        assert!(!judged[0].detail.contains("never saw"));
    }

    #[test]
    fn an_outage_during_the_watch_is_said_with_the_blind_spot() {
        let mut m = monitor();
        m.standing[0] = Standing::Seen(at(1010));
        m.outage[1] = Some("http://p:9093/api/v2/alerts: operation timed out".into());
        let detail = &m.judge()[0].detail;
        assert!(
            detail.starts_with("the monitoring never saw the fault"),
            "{detail}"
        );
        assert!(
            detail.ends_with("could not be read for a while during the watch: http://p:9093/api/v2/alerts: operation timed out"),
            "{detail}"
        );
    }

    #[test]
    fn an_alert_firing_before_the_injection_cannot_time_it() {
        let mut m = monitor();
        m.standing[0] = Standing::HeldBefore(at(900));
        m.standing[1] = Standing::Seen(at(1010));
        let judged = m.judge();
        assert_eq!(judged[0].verdict, PhaseVerdict::NotReached);
        assert!(
            judged[0].detail.contains("before the injection"),
            "{}",
            judged[0].detail
        );
    }
}
