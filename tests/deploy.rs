//! Deployment files stay right without a Docker engine: `docker-compose.yml` is loaded and
//! validated by compose-go (the Compose Specification's reference implementation, run through
//! `go run tests/compose-check`), and every command a service runs is one the binary accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{repo, Result};

fn compose_check(file: &Path) -> Result<std::process::Output> {
    Ok(Command::new("go")
        .current_dir(repo().join("tests/compose-check"))
        .env("SIGNAAL_AUTHOR_SECRET", "compose-check")
        .env("GRAFANA_ADMIN_PASSWORD", "compose-check")
        .args(["run", "."])
        .arg(file)
        .output()
        .map_err(|e| format!("cannot run `go` (install Go, see scripts/install-deps): {e}"))?)
}

#[test]
fn compose_file_is_valid_and_its_commands_exist() -> Result {
    let out = compose_check(&repo().join("docker-compose.yml"))?;
    let stdout = String::from_utf8(out.stdout)?;
    assert!(
        out.status.success(),
        "docker-compose.yml rejected:\n{}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("valid: 10 services"), "{stdout}");

    let bin = std::env::var("SIGNAAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/debug/signaal"));
    let mut commands = 0;
    for line in stdout.lines().filter(|l| l.starts_with("command\t")) {
        let mut parts = line.splitn(3, '\t').skip(1);
        let (service, json) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let args: Vec<String> = serde_json::from_str(json)?;
        let run = Command::new(&bin).args(&args).arg("--help").output()?;
        assert!(
            run.status.success(),
            "service `{service}` runs `signaal {}`, which the binary rejects: {}",
            args.join(" "),
            String::from_utf8_lossy(&run.stderr)
        );
        commands += 1;
    }
    assert_eq!(commands, 6, "one command per worker service");

    let dockerfile = std::fs::read_to_string(repo().join("deploy/Dockerfile"))?;
    assert!(
        dockerfile
            .lines()
            .filter(|l| l.starts_with("FROM "))
            .count()
            >= 2,
        "deploy/Dockerfile is multi-stage"
    );
    Ok(())
}

#[test]
fn the_checker_rejects_broken_compose_files() -> Result {
    let dir = tempfile::tempdir()?;
    let cases = [
        ("unknown key", "services:\n  a:\n    image: x\n    imagee: y\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n"),
        ("missing dependency", "services:\n  a:\n    image: x\n    depends_on: [nope]\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n"),
        ("no health check", "services:\n  a:\n    image: x\n"),
        ("a mounted file that is not there", "services:\n  a:\n    image: x\n    volumes:\n      - ./nope.yml:/etc/nope.yml:ro\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n"),
        ("dependency not awaited healthy", "services:\n  a:\n    image: x\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n  b:\n    image: x\n    depends_on: [a]\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n"),
    ];
    for (what, yaml) in cases {
        let file = dir.path().join("compose.yml");
        std::fs::write(&file, yaml)?;
        let out = compose_check(&file)?;
        assert!(
            !out.status.success(),
            "a compose file with {what} should be rejected"
        );
    }
    Ok(())
}
