//! `smarthostd tlsa HOST[:PORT]` against relays on loopback: the record of the key shown, as
//! computed from the relay's own key, and clear failures with exit code 1.

use std::process::Command;

use crate::fake_smtp::{Behavior, FakeSmtp};
use crate::fake_tls::{BOTH, MAIL1, Relay};
use crate::support::*;

fn run(target: &str) -> (bool, String, String) {
    let out = cli(&["tlsa", target, "--timeout", "2s", "--ehlo", "probe.test"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_prints_the_record_of_the_key_the_relay_holds_with_the_warning() {
    let relay = Relay::self_signed(&[MAIL1]);
    let host = FakeSmtp::start(Behavior::Starttls(relay.server(BOTH))).await;
    let target = host.addr.to_string();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || run(&target))
        .await
        .unwrap();
    assert!(ok, "{stdout}\n{stderr}");
    let record = relay.record();
    assert!(
        stdout.starts_with(&format!(
            "{} [{}], TLSv1_3:\n  {record}\n",
            host.addr.ip(),
            host.addr
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("tlsa = [\"{record}\"]")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "_{}._tcp.<the relay's name>. IN TLSA {record}",
            host.addr.port()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("pinning it trusts the network at this moment")
            && stdout.contains("openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum"),
        "{stdout}"
    );

    // The command it gives for the relay's side computes the same digest from the certificate.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), relay.pem()).unwrap();
    let pipeline =
        "openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum";
    let has_openssl = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_openssl {
        let out = Command::new("sh")
            .arg("-c")
            .arg(pipeline)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let digest = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            digest.split_whitespace().next(),
            record.strip_prefix("3 1 1 "),
            "openssl on the relay agrees"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_without_starttls_or_without_a_listener_is_a_clear_error() {
    let plain = FakeSmtp::start(Behavior::Healthy).await;
    let closed = FakeSmtp::closed().await;
    let silent = FakeSmtp::start(Behavior::Silent).await;
    let targets = [
        plain.addr.to_string(),
        closed.to_string(),
        silent.addr.to_string(),
    ];
    let outcomes = tokio::task::spawn_blocking(move || targets.map(|t| run(&t)))
        .await
        .unwrap();
    let [no_tls, refused, mute] = outcomes;
    for (ok, stdout, _) in [&no_tls, &refused, &mute] {
        assert!(!ok && stdout.is_empty(), "{stdout}");
    }
    assert!(
        no_tls.2.contains(&format!(
            "1 of the 1 addresses of {} showed no key: {}: STARTTLS is required but not offered",
            plain.addr.ip(),
            plain.addr
        )),
        "{}",
        no_tls.2
    );
    assert!(refused.2.contains(": connection refused"), "{}", refused.2);
    assert!(
        mute.2.contains(": no greeting reply within 2s"),
        "{}",
        mute.2
    );
    let (ok, _, stderr) = run("relay.test:http");
    assert!(!ok && stderr.contains("\"http\" is not a port"), "{stderr}");
}
