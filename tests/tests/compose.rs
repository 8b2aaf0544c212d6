//! No Docker engine runs here, so this checks what can be checked without
//! one: every utfall command, flag and `UTFALL_*` variable that
//! docker-compose.yml (with its cluster and projectors overlays) and the Dockerfile use
//! exists in the CLI.

use std::path::Path;

use utfall_tests::run_utfall;

fn repo_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn help(subcommand: &str) -> String {
    let output = run_utfall(&[subcommand.to_string(), "--help".to_string()], None);
    assert!(
        output.status.success(),
        "utfall {subcommand} --help failed: it is not a command"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `command:` arrays and `UTFALL_*` variables of services built from
/// this repository (those with `build:`).
fn utfall_services(compose: &str) -> Vec<(Vec<String>, Vec<String>)> {
    // Service blocks: a line indented by exactly two spaces opens one.
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in compose.lines() {
        let opens = line.starts_with("  ") && !line.starts_with("   ") && !line.trim_start().starts_with('#');
        match blocks.last_mut() {
            Some(block) if !opens && line.starts_with("    ") => block.push(line),
            _ if opens => blocks.push(vec![line]),
            _ => {}
        }
    }
    let mut services = Vec::new();
    for block in blocks
        .iter()
        .map(|b| b.join("\n"))
        .filter(|b| b.contains("\n    build:"))
    {
        let command = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("command:"))
            .map(|c| serde_json::from_str::<Vec<String>>(c.trim()).expect("command is a JSON-style list"))
            .expect("utfall service has a command");
        let variables = block
            .lines()
            .filter_map(|l| l.trim().split_once(':').map(|(k, _)| k.to_string()))
            .filter(|k| k.starts_with("UTFALL_"))
            .collect();
        services.push((command, variables));
    }
    services
}

fn check(command: &[String], variables: &[String]) {
    let (subcommand, flags) = command.split_first().expect("a subcommand");
    let text = help(subcommand);
    for flag in flags.iter().filter(|f| f.starts_with("--")) {
        let name = flag.split('=').next().unwrap_or(flag);
        assert!(
            text.contains(&format!("{name} ")) || text.contains(&format!("{name}\n")),
            "utfall {subcommand} has no {name}"
        );
    }
    for variable in variables {
        assert!(
            text.contains(&format!("env: {variable}=")),
            "utfall {subcommand} does not read {variable}"
        );
    }
}

#[test]
fn compose_uses_only_commands_flags_and_variables_the_cli_has() {
    for file in ["docker-compose.yml", "docker-compose.cluster.yml", "docker-compose.projectors.yml"] {
        let services = utfall_services(&repo_file(file));
        assert!(!services.is_empty(), "{file} runs no utfall service");
        for (command, variables) in services {
            check(&command, &variables);
        }
    }
}

#[test]
fn the_image_default_command_exists() {
    let dockerfile = repo_file("Dockerfile");
    let cmd = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .expect("Dockerfile has a CMD");
    let command: Vec<String> = serde_json::from_str(cmd).expect("CMD is a JSON list");
    check(&command, &[]);
}

#[test]
fn an_unknown_flag_is_caught() {
    let result = std::panic::catch_unwind(|| check(&["serve".into(), "--no-such-flag".into()], &[]));
    assert!(result.is_err());
}

#[test]
fn only_utfall_publishes_ports_and_only_on_loopback() {
    let compose = repo_file("docker-compose.yml");
    let mut service = "";
    let mut in_ports = false;
    let mut published = Vec::new();
    for line in compose.lines() {
        if line.starts_with("  ") && !line.starts_with("   ") && !line.trim_start().starts_with('#') {
            service = line.trim().trim_end_matches(':');
        }
        let trimmed = line.trim();
        if trimmed == "ports:" {
            in_ports = true;
        } else if in_ports && trimmed.starts_with("- ") {
            published.push((
                service.to_string(),
                trimmed.trim_start_matches("- ").trim_matches('"').to_string(),
            ));
        } else {
            in_ports = false;
        }
    }
    assert!(!published.is_empty(), "utfall publishes no port");
    for (service, port) in published {
        assert_eq!(service, "utfall", "{service} publishes {port}");
        assert!(port.starts_with("127.0.0.1:"), "{port} is published on every interface");
    }
}
