//! The same binary against a token behind a socket, by changing only the module path:
//! `p11-kit server` exports the fixture's SoftHSM token, and hsm-demo loads
//! p11-kit-client.so, a stand-in for a network HSM's PKCS#11 library. Here login state
//! is not shared between cryptoki and the pkcs11-provider (docs/platform.md, "login sharing"), so signing
//! only works because the provider is given its own PIN.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok, signature_hex, softhsm_module, succeeds, SoftHsm};

const CLIENT: &str = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so";

/// A `p11-kit server` for one token, killed on drop.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(hsm: &SoftHsm) -> Server {
        let socket = hsm.path("p11-kit.sock");
        let child = Command::new("p11-kit")
            .args(["server", "-f", "-n"])
            .arg(&socket)
            .args(["--provider", &softhsm_module(), "pkcs11:token=test-hsm"])
            .env("SOFTHSM2_CONF", &hsm.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("p11-kit installed by scripts/setup.sh");
        let start = Instant::now();
        while !socket.exists() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "p11-kit server did not create its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            address: format!("unix:path={}", socket.display()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_token_behind_a_socket_works_by_changing_only_the_module_path() {
    let hsm = SoftHsm::new();
    let server = Server::start(&hsm);
    let remote = |args: &[&str]| {
        let mut cmd = hsm.cmd();
        // No SOFTHSM2_CONF on the client side: the token is only reachable through the socket.
        cmd.env_remove("SOFTHSM2_CONF")
            .env("P11_KIT_SERVER_ADDRESS", &server.address)
            .arg("--module")
            .arg(CLIENT)
            .args(args);
        cmd
    };
    let out = succeeds(&mut remote(&["list-slots"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("label:        test-hsm"));

    succeeds(&mut remote(&["generate-key", "--label", "remote-key"]));
    let out = succeeds(&mut remote(&[
        "sign",
        "--label",
        "remote-key",
        "--data",
        "over the wire",
    ]));
    let sig = signature_hex(&String::from_utf8_lossy(&out.stdout));

    // The key really lives in the SoftHSM store behind the server: verify locally
    // against that store, and with the openssl CLI.
    hsm.cmd()
        .args([
            "verify",
            "--label",
            "remote-key",
            "--data",
            "over the wire",
            "--sig",
            &sig,
        ])
        .assert()
        .success();
    hsm.run_ok(&[
        "export-pubkey",
        "--label",
        "remote-key",
        "--out",
        "remote.pem",
    ]);
    hsm.write("data", "over the wire");
    hsm.write("sig.der", hex::decode(&sig).unwrap());
    assert_eq!(
        ok(hsm.openssl().args([
            "dgst",
            "-sha256",
            "-verify",
            "remote.pem",
            "-signature",
            "sig.der",
            "data"
        ]))
        .trim(),
        "Verified OK"
    );

    // A wrong PIN through the socket is still one line, exit 3.
    remote(&["list-keys"])
        .env("HSM_DEMO_PIN", "000000")
        .assert()
        .code(3);
    drop(server);
}
