//! `tests/prerequisites`, which tests/run, tests/demo and .ci/run call first: on this machine
//! (where tests/run has just run it) it finds everything; on a machine without podman it
//! names what is missing and the `apt-get` command in one line. "Without podman" is this
//! machine seen through a PATH of links to every program but podman and buildah (nothing is
//! uninstalled); "not root" is a user namespace, where the script runs as uid 65534 and
//! there is no sudo. Stack-tests only: it needs the whole set that tests/run installs.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::repo_path;

/// A directory of links to every program on this PATH (and in /usr/sbin, /sbin) except
/// `hidden`, removed when dropped.
struct PathWithout(PathBuf);

impl PathWithout {
    fn new(name: &str, hidden: &[&str]) -> PathWithout {
        let dir =
            std::env::temp_dir().join(format!("seinode-prereq-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = std::env::var("PATH").unwrap();
        for d in path.split(':').chain(["/usr/sbin", "/sbin"]) {
            let Ok(entries) = std::fs::read_dir(d) else {
                continue;
            };
            for e in entries.flatten() {
                let file = e.file_name();
                let name = file.to_string_lossy();
                let link = dir.join(&file);
                if hidden.contains(&name.as_ref()) || link.symlink_metadata().is_ok() {
                    continue;
                }
                symlink(e.path(), link).unwrap();
            }
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        PathWithout(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PathWithout {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `tests/prerequisites ARGS` with PATH=`path` (the inherited PATH if None), through
/// `wrapper` (e.g. `unshare --user`) if given; returns (exit code, stdout, stderr).
fn prerequisites(args: &[&str], path: Option<&Path>, wrapper: &[&str]) -> (i32, String, String) {
    let script = repo_path("tests/prerequisites");
    let mut cmd = match wrapper.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(&script);
            c
        }
        None => Command::new(&script),
    };
    cmd.args(args);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let out = cmd.output().expect("tests/prerequisites runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("id runs");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn prerequisites_finds_everything_tests_run_and_the_demo_need_here() {
    for target in ["run", "demo"] {
        let (code, out, err) = prerequisites(&["--check", target], None, &[]);
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "{target}");
    }
}

#[test]
fn prerequisites_without_podman_names_it_and_the_apt_command_in_one_line() {
    let path = PathWithout::new("check", &["podman", "buildah"]);
    let (code, out, err) = prerequisites(&["--check"], Some(path.path()), &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        "tests/prerequisites: missing podman, buildah; install: apt-get install -y podman buildah\n"
    );
    // The demo does not need them.
    let (code, _, err) = prerequisites(&["--check", "demo"], Some(path.path()), &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn prerequisites_not_root_and_without_sudo_stops_with_the_command_to_run_as_root() {
    let path = PathWithout::new("user", &["podman", "buildah", "sudo"]);
    // As root, a user namespace makes the script uid 65534 (files still read as before).
    let wrapper: &[&str] = if is_root() {
        &["unshare", "--user"]
    } else {
        &[]
    };
    let (code, out, err) = prerequisites(&[], Some(path.path()), wrapper);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        "tests/prerequisites: missing podman, buildah; install: as root (not root here, and no \
         sudo): apt-get install -y podman buildah\n"
    );
}

#[test]
fn prerequisites_names_a_go_older_than_the_stack_needs_and_stops_before_installing() {
    // A fake `go` (the real one cannot be made old): it answers `go env GOVERSION` as Go
    // 1.19 would. podman is hidden too: a missing toolchain stops at once, naming both, and
    // installs nothing even as root.
    let path = PathWithout::new("oldgo", &["podman", "buildah", "go"]);
    let fake_go = path.path().join("go");
    std::fs::write(&fake_go, "#!/bin/sh\n# fake go 1.19\necho go1.19.13\n").unwrap();
    std::fs::set_permissions(&fake_go, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, out, err) = prerequisites(&[], Some(path.path()), &[]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(out, "");
    assert_eq!(
        err,
        "tests/prerequisites: missing Go >= 1.26 (have go1.19.13), podman, buildah; install: \
         install Go >= 1.26 from its release archive and put its bin/ on PATH; apt-get install \
         -y podman buildah\n"
    );
}
