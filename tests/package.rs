//! The Debian package (`tools/deb.sh`): it builds, holds what it must, its
//! systemd unit passes `systemd-analyze verify`, its maintainer scripts
//! parse, and the packaged keeper, started as the unit starts it with the
//! packaged zoo.cfg, tells systemd READY=1 (sd_notify), answers `ruok`, and
//! on SIGTERM says STOPPING=1 and exits 0. Installing it for real (dpkg -i,
//! the service user, purge) changes the machine, so that is
//! `tools/deb-install-test.sh`, run by hand (the README says how).

mod common;

use common::{KillOnDrop, four_letter, free_port, temp_dir};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

/// Builds the package from this test build's binaries; its path.
fn build_package(out_dir: &Path) -> PathBuf {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keeper")).parent().unwrap();
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/deb.sh")).env("BIN_DIR", bin_dir).env("OUT_DIR", out_dir).output().expect("deb.sh runs");
    assert!(out.status.success(), "tools/deb.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The next datagram on `sock`, as text (sd_notify's messages).
fn next_notice(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 256];
    let n = sock.recv(&mut buf).expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn the_debian_package_holds_a_service_that_starts_answers_and_stops() {
    common::require("/usr/bin/dpkg-deb");
    common::require("/usr/bin/systemd-analyze");
    let dir = temp_dir("package");
    let deb = build_package(&dir);
    let contents = run(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    for path in ["./usr/bin/keeper", "./usr/bin/keeper-bench", "./etc/keeper/zoo.cfg", "./lib/systemd/system/keeper.service"] {
        assert!(contents.contains(path), "the package holds {path}:\n{contents}");
    }
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(info.contains("Package: keeper") && info.contains("conffiles") && info.contains("postinst"), "{info}");
    let root = dir.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(root.join("DEBIAN")));
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(root.join("DEBIAN").join(script)));
    }
    assert_eq!(std::fs::read_to_string(root.join("DEBIAN/conffiles")).unwrap().trim(), "/etc/keeper/zoo.cfg");

    // The unit, pointed at the extracted binary (verify checks that ExecStart exists).
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/keeper.service")).unwrap();
    let binary = root.join("usr/bin/keeper");
    assert!(unit.contains("Type=notify") && unit.contains("ExecStart=/usr/bin/keeper serve --config /etc/keeper/zoo.cfg"), "{unit}");
    let check_dir = dir.join("unit");
    std::fs::create_dir_all(&check_dir).unwrap();
    std::fs::write(check_dir.join("keeper.service"), unit.replace("/usr/bin/keeper", &binary.display().to_string())).unwrap();
    run(Command::new("systemd-analyze").arg("verify").arg(check_dir.join("keeper.service")));

    // Started as the unit starts it, with the packaged zoo.cfg (its data and port moved here).
    let port = free_port();
    let cfg = std::fs::read_to_string(root.join("etc/keeper/zoo.cfg")).unwrap();
    assert!(cfg.contains("dataDir=/var/lib/keeper") && cfg.contains("clientPort=2181"), "{cfg}");
    let cfg =
        cfg.replace("dataDir=/var/lib/keeper", &format!("dataDir={}", dir.join("data").display())).replace("clientPort=2181", &format!("clientPort={port}"));
    std::fs::write(dir.join("zoo.cfg"), cfg).unwrap();
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let child = Command::new(&binary)
        .args(["serve", "--config"])
        .arg(dir.join("zoo.cfg"))
        .env("NOTIFY_SOCKET", &notify_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the packaged keeper starts");
    let mut server = KillOnDrop::new(child);
    assert_eq!(next_notice(&notify), "READY=1");
    assert_eq!(four_letter(port, "ruok"), "imok");
    let pid = server.child().id();
    run(Command::new("kill").arg("-TERM").arg(pid.to_string()));
    assert_eq!(next_notice(&notify), "STOPPING=1");
    let status = server.child().wait().unwrap();
    assert!(status.success(), "a SIGTERM stop exits 0, got {status}");
    std::fs::remove_dir_all(&dir).unwrap();
}
