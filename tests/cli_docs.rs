//! Shell completions and man pages, generated from the same clap definitions that
//! parse the command line, checked with the real shell and man page tools.

mod common;

use common::{fails_with, ok, SoftHsm};
use predicates::prelude::*;

const SUBCOMMANDS: [&str; 12] = [
    "list-slots",
    "init-token",
    "generate-key",
    "list-keys",
    "sign",
    "verify",
    "export-pubkey",
    "key-ceremony",
    "quorum-reset-pin",
    "bench",
    "openssl-env",
    "completions",
];

#[test]
fn bash_completion_registers_and_completes_subcommands_and_flags() {
    let dir = SoftHsm::empty();
    let script = ok(dir.bare_cmd().args(["completions", "bash"]));
    dir.write("hsm-demo.bash", &script);
    // bash itself loads it, registers a completion for hsm-demo, and completes.
    let completed = ok(dir.tool("bash").args([
        "-c",
        r#"source ./hsm-demo.bash
           spec=$(complete -p hsm-demo) || exit 1
           echo "$spec"
           fn=${spec##*-F }; fn=${fn%% *}
           COMP_WORDS=(hsm-demo "") COMP_CWORD=1 COMP_LINE="hsm-demo " COMP_POINT=9
           "$fn" hsm-demo "" hsm-demo; printf '%s\n' "${COMPREPLY[@]}"
           COMP_WORDS=(hsm-demo sign --) COMP_CWORD=2 COMP_LINE="hsm-demo sign --" COMP_POINT=16
           "$fn" hsm-demo -- sign; printf '%s\n' "${COMPREPLY[@]}""#,
    ]));
    assert!(completed.starts_with("complete ") && completed.contains(" -F "), "{completed}");
    for sub in SUBCOMMANDS {
        assert!(completed.lines().any(|l| l == sub), "{sub} missing:\n{completed}");
    }
    assert!(!completed.lines().any(|l| l == "__set-so-pin"), "{completed}");
    for flag in ["--label", "--key", "--data", "--in", "--format", "--out"] {
        assert!(completed.lines().any(|l| l == flag), "{flag} missing:\n{completed}");
    }
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let dir = SoftHsm::empty();
    for shell in ["zsh", "fish"] {
        let script = ok(dir.bare_cmd().args(["completions", shell]));
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
        assert!(!script.contains("__set-so-pin"), "{shell}: internal step offered");
    }
    let line = fails_with(dir.bare_cmd().args(["completions", "tcsh"]), 2);
    assert!(line.contains("tcsh"), "{line}");
}

#[test]
fn man_pages_render_with_man_and_are_never_overwritten() {
    let dir = SoftHsm::empty();
    let page = ok(dir.bare_cmd().arg("manpage"));
    assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH hsm-demo 1"), "{page}");
    dir.write("hsm-demo.1", &page);
    // man(1) formats it: the name line, the subcommands, the global options.
    let man = |file: &str| {
        let text = ok(dir
            .tool("bash")
            .env("MANWIDTH", "100")
            .args(["-c", "man -P cat -l \"$1\" | col -bx", "man", file]));
        // Justified text: compare with single spaces.
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let text = man("hsm-demo.1");
    assert!(text.contains("hsm-demo - Key custody with a PKCS#11 token"), "{text}");
    for want in ["key-ceremony", "--module", "--pin-file"] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let out = dir.path("man1");
    std::fs::create_dir(&out).unwrap();
    let listed = ok(dir.bare_cmd().args(["manpage", "--dir", out.to_str().unwrap()]));
    let sign = out.join("hsm-demo-sign.1");
    assert!(listed.lines().any(|l| l == sign.to_str().unwrap()), "{listed}");
    let sign_text = man(sign.to_str().unwrap());
    assert!(sign_text.contains("--format"), "{sign_text}");
    assert!(!out.join("hsm-demo-__set-so-pin.1").exists());
    // A second run refuses to replace what is there.
    dir.bare_cmd()
        .args(["manpage", "--dir", out.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("already exists"));
}
