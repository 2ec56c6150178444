//! The run's signals: Ctrl-C, SIGTERM and SIGHUP stop it (rollback and
//! report first), a second says what is still being undone, a third
//! leaves at once with the command that finishes the undo.

use crate::exit;

/// Ctrl-C, SIGTERM and SIGHUP: the first asks the run to stop (no new change to
/// the cluster, roll back, report); the second says what rollback is still
/// undoing; the third leaves at once, with the command that finishes the
/// undo from the journal.
pub async fn stop_on_signals(
    cancel: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    undoing: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    recover_hint: std::sync::Arc<std::sync::Mutex<String>>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    let mut count = 0;
    loop {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            // A closed terminal or dropped SSH session: stop, roll back.
            _ = hup.recv() => {}
        }
        count += 1;
        let now = undoing.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let recover_hint = recover_hint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match count {
            1 => {
                eprintln!(
                    "interrupted: no new change to the cluster; rolling back, then writing the report"
                );
                let _ = cancel.send(true);
            }
            2 => match now {
                Some(what) => eprintln!(
                    "still rolling back: {what}. Interrupt once more to leave now; then run: {recover_hint}"
                ),
                None => eprintln!(
                    "stopping: waiting for the step under way to end, then rolling back. Interrupt once more to leave now; then run: {recover_hint}"
                ),
            },
            _ => {
                eprintln!(
                    "leaving now: what was not undone is in the journal; undo it with: {recover_hint}"
                );
                std::process::exit(i32::from(exit::INTERRUPTED));
            }
        }
    }
}
