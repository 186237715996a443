//! The README's commands, executed: every `portalctl …` line of its `sh` blocks runs against a copy of
//! the bundled tenants in a temporary directory, in order, and must succeed — so the README cannot drift
//! from the tool. Lines that need a cluster, a database or a running server are listed in `NEEDS_SERVICES`
//! and are checked only for being a valid command line (`--help` parses them).

mod support;

use support::repo_root;
use support::workdir::Workdir;

/// Commands whose README lines need a service the test does not have; their command lines are still
/// parsed by clap.
const NEEDS_SERVICES: &[&str] =
    &["db", "diff", "apply", "rollout", "status", "servicekonto", "serve", "up", "down", "feedback", "audit"];

/// The `portalctl` lines of the README's `sh` blocks, without trailing comments.
fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh" && !in_sh;
            continue;
        }
        let line = line.split(" # ").next().unwrap().trim();
        if in_sh && line.starts_with("portalctl ") {
            out.push(line.to_string());
        }
    }
    out
}

/// Split a README line into arguments: whitespace-separated, no quoting needed so far; an output
/// redirection `> FILE` is returned separately.
fn split(line: &str) -> (Vec<String>, Option<String>) {
    let (cmd, redirect) = match line.split_once(" > ") {
        Some((c, f)) => (c, Some(f.trim().to_string())),
        None => (line, None),
    };
    (cmd.split_whitespace().skip(1).map(String::from).collect(), redirect)
}

#[test]
fn every_readme_command_runs() {
    let env = Workdir::with_tenants(&repo_root().join("tenants"));
    let commands = readme_commands();
    assert!(commands.len() >= 15, "the README's commands were found: {commands:?}");
    let mut ran = 0;
    for line in &commands {
        let (args, redirect) = split(line);
        let args: Vec<&str> = args.iter().map(String::as_str).filter(|a| *a != "…").collect();
        if NEEDS_SERVICES.contains(&args[0]) {
            // The command line itself must be valid: parse it with --help appended.
            let mut with_help = args.clone();
            with_help.push("--help");
            let run = env.run(&with_help);
            assert_eq!(run.code, 0, "`{line}` is not a valid command line: {}", run.stderr);
            continue;
        }
        let run = env.run(&args);
        assert_eq!(run.code, 0, "`{line}` failed:\n{}{}", run.stdout, run.stderr);
        if let Some(file) = redirect {
            // Where the README redirects to (a home directory), the output must at least be there.
            assert!(!run.stdout.is_empty(), "`{line}` printed nothing for {file}");
        }
        ran += 1;
    }
    assert!(ran >= 10, "most README commands really ran: {ran}");
}
