//! A root that survives the loss of its token: key-ceremony --backup-quorum, the
//! README's walkthrough (restored onto another token, it signs a subordinate CA that
//! openssl verifies under the original root certificate), key-backup, and every
//! refusal leaving both tokens as they were.

mod common;


use common::{fails_with, ok, SoftHsm, SO_PIN, USER_PIN};

#[test]
fn the_readme_backup_walkthrough_runs_as_shown() {
    let script = common::readme_script("<!-- backup-walkthrough -->", "<!-- /backup-walkthrough -->");
    let (_dir, stdout, _) = common::run_script(&script, &[]);
    assert!(stdout.contains("[Step 2b] Backup: the root key wrapped (CKM_AES_KEY_WRAP_PAD)"), "{stdout}");
    assert!(stdout.contains("extractable only wrapped by a trusted key the SO installs"), "{stdout}");
    assert!(stdout.contains("Restored key 'root-ca-key' (ec-p256) into token 'vault-b'"), "{stdout}");
    assert!(stdout.contains("proof:    a fresh challenge signed in the token verifies under the original public key"), "{stdout}");
    assert!(stdout.contains("issuing.pem: OK"), "{stdout}");
    assert!(stdout.contains("Ceremony verified:"), "{stdout}");
    // The restore is in the root's log, its checkpoint signed by the restored key.
    assert!(stdout.contains("ok    1 checkpoint signature(s) verify under the CA certificate"), "{stdout}");
}

/// The objects of token `label` (pkcs11-tool; logged in with the user PIN when `login`,
/// else the public ones: public keys, and a wrap key, which is a public object).
fn objects(hsm: &SoftHsm, label: &str, login: bool) -> Vec<String> {
    let mut cmd = hsm.pkcs11_tool();
    cmd.args(["--token-label", label, "--list-objects"]);
    if login {
        cmd.args(["--login", "--pin", USER_PIN]);
    }
    let out = ok(&mut cmd);
    let mut lines: Vec<String> = out.lines().filter(|l| l.ends_with("Object; EC") || l.contains("Object;") || l.trim_start().starts_with("label:")).map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn refusals_leave_both_tokens_as_they_were() {
    let hsm = SoftHsm::new();
    hsm.add_token("spare");
    let spare = |cmd: &mut common::Command| {
        cmd.args(["--token", "spare"]);
    };
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["--token", "test-hsm", "key-ceremony", "--backup-quorum", "3/5", "--activation-quorum", "2/3", "--out", "c", "--label", "root"]));
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["--token", "spare", "key-ceremony", "--no-quorum", "--backup-quorum", "2/3", "--out", "other", "--label", "other-root"]));
    ok(hsm.cmd().args(["--token", "spare", "generate-key", "--label", "plain"]));
    let both = || (objects(&hsm, "test-hsm", false), objects(&hsm, "spare", true));
    let before = both();
    let share = |dir: &str, name: &str| format!("{dir}/{name}");
    let restore = |args: &[String]| {
        let mut cmd = hsm.cmd();
        spare(&mut cmd);
        cmd.arg("key-restore").args(args);
        cmd
    };
    let three: Vec<String> = [1, 3, 5].iter().flat_map(|i| ["--share".to_string(), share("c", &format!("backup-share-{i}-of-5.json"))]).collect();
    let mut altered: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(hsm.path("c/root-key.wrapped")).unwrap()).unwrap();
    let mut blob = hex::decode(altered["wrapped"].as_str().unwrap()).unwrap();
    blob[12] ^= 0x01;
    altered["wrapped"] = serde_json::Value::String(hex::encode(blob));
    hsm.write("altered.wrapped", altered.to_string());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            [vec!["--wrapped".into(), "c/root-key.wrapped".into()], three[..4].to_vec()].concat(),
            "2 distinct share(s) given; this quorum needs 3 of 5",
        ),
        (
            vec!["--wrapped".into(), "c/root-key.wrapped".into(), "--share".into(), "c/share-1-of-5.json".into(), "--share".into(), "c/share-2-of-5.json".into(), "--share".into(), "c/share-3-of-5.json".into()],
            "SO PIN",
        ),
        (
            vec!["--wrapped".into(), "c/root-key.wrapped".into(), "--share".into(), "c/activation-share-1-of-3.json".into(), "--share".into(), "c/activation-share-2-of-3.json".into()],
            "activation",
        ),
        ([vec!["--wrapped".into(), "altered.wrapped".into(), "--label".into(), "r2".into()], three.clone()].concat(), "integrity check (RFC 5649) fails"),
        ([vec!["--wrapped".into(), "other/root-key.wrapped".into(), "--label".into(), "r3".into()], three.clone()].concat(), "belong to ceremony"),
        ([vec!["--wrapped".into(), "c/root-key.wrapped".into(), "--label".into(), "other-root".into()], three.clone()].concat(), "already holds an object with label 'other-root'"),
    ];
    for (args, expect) in cases {
        let line = fails_with(&mut restore(&args), 2);
        assert!(line.contains(expect), "{args:?}: {line}");
        assert_eq!(both(), before, "{args:?} left something behind");
    }
    // A key that was not generated for backup can never be: said in one line.
    let line = fails_with(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["--token", "spare", "key-backup", "--label", "plain", "--share", "c/backup-share-1-of-5.json", "--share", "c/backup-share-2-of-5.json", "--share", "c/backup-share-3-of-5.json", "--out", "plain.wrapped"]), 2);
    assert!(line.contains("can never be backed up"), "{line}");
    assert!(!hsm.path("plain.wrapped").exists());
    // key-backup makes a second copy for another site; it restores as the first does.
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).env_remove("HSM_DEMO_PIN").args(["--token", "test-hsm", "--pin-share", "c/activation-share-1-of-3.json", "--pin-share", "c/activation-share-3-of-3.json", "key-backup", "--label", "root", "--so-share", "c/share-1-of-5.json", "--so-share", "c/share-2-of-5.json", "--so-share", "c/share-4-of-5.json", "--share", "c/backup-share-2-of-5.json", "--share", "c/backup-share-4-of-5.json", "--share", "c/backup-share-5-of-5.json", "--out", "site-b.wrapped"]));
    let out = ok(&mut restore(&[vec!["--wrapped".into(), "site-b.wrapped".into()], three.clone()].concat()));
    assert!(out.contains("Restored key 'root' (ec-p256) into token 'spare'"), "{out}");
    assert!(out.contains("restored from a backup"), "{out}");
    // No trusted wrap key object stays behind on either token.
    for token in ["test-hsm", "spare"] {
        let list = objects(&hsm, token, token == "spare").join("\n");
        assert!(!list.contains("hsm-demo wrap key"), "{token}: {list}");
    }
}

#[test]
fn the_token_refuses_an_untrusted_wrap_of_a_backed_up_root() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    use cryptoki::mechanism::Mechanism;
    use cryptoki::object::{Attribute, KeyType, ObjectClass};
    use cryptoki::session::UserType;
    use cryptoki::types::AuthPin;
    let hsm = SoftHsm::new();
    ok(hsm.cmd().env("HSM_DEMO_SO_PIN", SO_PIN).args(["key-ceremony", "--no-quorum", "--backup-quorum", "2/3", "--out", "c", "--label", "root"]));
    // Directly with cryptoki, as any PKCS#11 program could: an AES key the user makes
    // (not trusted) tries to wrap the root. (pkcs11-tool 0.23 wraps secret keys only.)
    std::env::set_var("SOFTHSM2_CONF", &hsm.conf);
    let pkcs11 = Pkcs11::new(common::softhsm_module()).unwrap();
    pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).unwrap();
    let slot = pkcs11.get_slots_with_token().unwrap().into_iter().find(|s| pkcs11.get_token_info(*s).map(|i| i.label() == "test-hsm").unwrap_or(false)).unwrap();
    let session = pkcs11.open_rw_session(slot).unwrap();
    session.login(UserType::User, Some(&AuthPin::from(USER_PIN))).unwrap();
    let aes = session
        .generate_key(&Mechanism::AesKeyGen, &[Attribute::ValueLen(32.into()), Attribute::Wrap(true), Attribute::Token(false)])
        .unwrap();
    let root = session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), Attribute::Label(b"root".to_vec())]).unwrap()[0];
    let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, aes, root);
    let err = format!("{:?}", wrapped.unwrap_err());
    assert!(err.contains("KeyNotWrappable"), "{err}");
    // And CKA_WRAP_WITH_TRUSTED cannot be turned off.
    let off = session.update_attributes(root, &[Attribute::WrapWithTrusted(false)]);
    let err = format!("{:?}", off.unwrap_err());
    assert!(err.contains("AttributeReadOnly"), "{err}");
    let _ = KeyType::AES;
}
