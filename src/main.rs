//! The `hpchaos` binary: parses the command line, calls the library, maps
//! outcomes to the documented exit codes.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

mod cli;

use cli::{Cli, Command, LabCommand};
use hpchaos::journal::Journal;
use hpchaos::report::{self, Format};
use hpchaos::scenario::{self, LoadError, schema};
use hpchaos::{exit, validate};
use hpchaos_lab as lab;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate {
            files,
            cluster,
            short,
        } => run_validate(&files, cluster.as_deref(), short),
        Command::Schema { kind, output } => {
            write_out(output.as_deref(), &schema::schema_text(kind))
        }
        Command::Report {
            journal,
            format,
            output,
            check,
        } => run_report(&journal, format, output.as_deref(), check),
        Command::Lab { command } => run_lab(command),
        Command::Run {
            files,
            cluster,
            report_dir,
            dry_run,
            baseline,
            if_idle,
            wait_lock,
        } => hpchaos::cli_run::run(
            &files,
            cluster.as_deref(),
            report_dir.as_deref(),
            &hpchaos::cli_run::RunOptions {
                dry_run,
                baseline,
                if_idle,
                wait_lock: wait_lock.map(|d| d.as_std()),
            },
        ),
        Command::Plan { scenario, cluster } => hpchaos::cli_run::run(
            &[scenario],
            Some(&cluster),
            None,
            &hpchaos::cli_run::RunOptions {
                dry_run: true,
                ..Default::default()
            },
        ),
        Command::History {
            report_dir,
            scenario,
            since,
            format,
            rebuild,
        } => hpchaos::cli_history::history(
            &report_dir,
            scenario.as_deref(),
            since.as_deref(),
            format,
            rebuild,
        ),
        Command::Trend {
            scenario,
            report_dir,
            since,
            format,
        } => hpchaos::cli_history::trend(&report_dir, &scenario, since.as_deref(), format),
        Command::Status { cluster, format } => {
            hpchaos::cli_run::status(&cluster, format == cli::StatusFormat::Json)
        }
        Command::Recover {
            cluster,
            journal,
            release_lock,
            force,
        } => {
            hpchaos::recover::recover(&cluster, journal.as_deref(), release_lock.as_deref(), force)
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "hpchaos",
                &mut std::io::stdout(),
            );
            exit::SUCCESS
        }
    };
    ExitCode::from(code)
}

fn run_validate(files: &[std::path::PathBuf], cluster: Option<&Path>, short: bool) -> u8 {
    let profile = match cluster.map(scenario::load_profile) {
        None => None,
        Some(Ok(loaded)) => {
            // The files the profile names, and the head's key, offline.
            let problems = hpchaos::preflight::offline(&loaded.path, &loaded.text, &loaded.value);
            if !problems.is_empty() {
                for problem in &problems {
                    if short {
                        eprintln!("{}", problem.short());
                    } else {
                        eprintln!("{}", problem.render(&loaded.text));
                    }
                }
                println!(
                    "invalid {} ({} problem(s))",
                    loaded.path.display(),
                    problems.len()
                );
                return exit::INVALID_INPUT;
            }
            Some(loaded.value)
        }
        Some(Err(err)) => {
            print_load_error(&err, short);
            return exit::INVALID_INPUT;
        }
    };
    let outcomes = validate::validate(files, profile.as_ref());
    let mut problems = 0;
    for outcome in &outcomes {
        match &outcome.result {
            Ok(what) => println!("ok      {} ({what})", outcome.path.display()),
            Err(diagnostics) => {
                problems += diagnostics.len();
                println!(
                    "invalid {} ({} problem(s))",
                    outcome.path.display(),
                    diagnostics.len()
                );
                for diagnostic in diagnostics.iter() {
                    if short {
                        eprintln!("{}", diagnostic.short());
                    } else {
                        eprintln!("{}", diagnostic.render(&outcome.text));
                    }
                }
            }
        }
    }
    let invalid = outcomes.iter().filter(|o| !o.is_valid()).count();
    println!(
        "{} file(s) valid, {invalid} invalid, {problems} problem(s)",
        outcomes.len() - invalid
    );
    if invalid == 0 {
        exit::SUCCESS
    } else {
        exit::INVALID_INPUT
    }
}

fn print_load_error(err: &LoadError, short: bool) {
    match err {
        LoadError::Invalid {
            text, diagnostics, ..
        } => {
            for diagnostic in diagnostics.iter() {
                if short {
                    eprintln!("{}", diagnostic.short());
                } else {
                    eprintln!("{}", diagnostic.render(text));
                }
            }
        }
        LoadError::Read { .. } => eprintln!("error: {err}"),
    }
}

fn run_report(path: &Path, format: Format, output: Option<&Path>, check: bool) -> u8 {
    let journal = match Journal::load(path) {
        Ok(journal) => journal,
        Err(err) => {
            eprintln!("error: {err}");
            return exit::INVALID_INPUT;
        }
    };
    if journal.records.is_empty() {
        eprintln!(
            "error: {} holds no journal records; is it a journal.jsonl written by `hpchaos run`?",
            path.display()
        );
        return exit::INVALID_INPUT;
    }
    for (line, problem) in &journal.damaged {
        eprintln!(
            "warning: {}:{line}: unreadable journal line: {problem}",
            path.display()
        );
    }
    let report = report::build(&journal);
    let written = write_out(output, &format.exporter().render(&report));
    match (written, check) {
        (exit::SUCCESS, true) => report.exit_code(),
        (code, _) => code,
    }
}

fn run_lab(command: LabCommand) -> u8 {
    let result = match command {
        LabCommand::Up {
            nodes,
            dir,
            timings,
            scale,
            no_recovery,
            api_without_hostnames,
            log_time_format,
            slurm,
            reboot_keeps_launch_time,
            cluster_size,
            monitoring,
        } => {
            // Bad input, said before anything starts (exit 2).
            if cluster_size.is_some_and(|size| size < u16::from(nodes)) {
                eprintln!(
                    "error: --cluster-size must be at least --nodes ({nodes}): it counts every Slurm node, run or declared"
                );
                return exit::INVALID_INPUT;
            }
            let options = lab::UpOptions {
                nodes,
                timings,
                scale,
                node_recovery_none: no_recovery,
                api_without_hostnames,
                log_time_format,
                slurm,
                reboot_keeps_launch_time,
                cluster_size,
                monitoring,
            };
            lab::up(&dir, &options).and_then(|layout| {
                hpchaos::output::print(&lab::status(&dir)?);
                println!("use it with: --cluster {}", layout.profile().display());
                Ok(())
            })
        }
        LabCommand::Down { dir } => lab::down(&dir).map(|()| {
            let left = lab::leftovers(&dir);
            if left.is_empty() {
                println!("lab down: nothing left behind outside {}", dir.display());
            } else {
                eprintln!("lab down left: {}", left.join(", "));
            }
        }),
        LabCommand::Status { dir } => lab::status(&dir).map(|text| hpchaos::output::print(&text)),
        LabCommand::Throttle {
            dir,
            rate,
            burst,
            off: _,
        } => {
            let limit = rate.map(|rate| lab::throttle::Limit { rate, burst });
            match limit {
                Some(l) if !(l.rate >= 0.0 && l.burst >= 1.0) => Err(lab::system::LabError::Setup(
                    "--rate must be 0 or more and --burst at least 1".to_owned(),
                )),
                _ => lab::throttle(&dir, limit).map(|()| match limit {
                    Some(l) => println!(
                        "API limited to {} request(s)/s, bursts of {}",
                        l.rate, l.burst
                    ),
                    None => println!("API rate limit lifted"),
                }),
            }
        }
        LabCommand::Logs { dir, node } => {
            let layout = lab::layout::Layout::new(&dir);
            let files = match &node {
                None => vec![layout.ground_truth(), layout.daemon_log()],
                Some(name) => {
                    let root = layout.node_root(name);
                    vec![
                        layout.node_console(name),
                        root.join("log/slurm/slurmctld.log"),
                        root.join("log/slurm/slurmd.log"),
                        root.join("log/syslog"),
                    ]
                }
            };
            for file in files.iter().filter(|f| f.exists()) {
                hpchaos::output::println(&format!("==> {} <==", file.display()));
                hpchaos::output::print(&std::fs::read_to_string(file).unwrap_or_default());
            }
            Ok(())
        }
        LabCommand::Daemon { dir } => lab::daemon::run(lab::layout::Layout::new(&dir)),
        LabCommand::Exporter {
            dir,
            node,
            role,
            rootfs,
        } => {
            let role = match role.as_str() {
                "head" => lab::layout::Role::Head,
                "login" => lab::layout::Role::Login,
                _ => lab::layout::Role::Compute,
            };
            lab::exporter::run(&dir, &node, role, &rootfs)
        }
    };
    match result {
        Ok(()) => exit::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            exit::HARNESS_FAILED
        }
    }
}

fn write_out(output: Option<&Path>, text: &str) -> u8 {
    let result = match output {
        Some(path) => std::fs::write(path, text)
            .map_err(|err| format!("cannot write {}: {err}", path.display())),
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .map_err(|err| format!("cannot write to standard output: {err}"))
        }
    };
    match result {
        Ok(()) => exit::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            exit::HARNESS_FAILED
        }
    }
}
