//! Fuzzes the whole frontend: parsing, typing, planning, linting and word expansion.
//! No input may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rust_image_action::check::check_text;
use rust_image_action::frontend::expand::{Lexer, NoEnv};
use rust_image_action::plan::{PlanOptions, Vars};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = check_text(&text, &PlanOptions::default());
    // The same bytes as a word, in both escape modes and with variables set.
    let vars = Vars(vec![("A".into(), "a b".into()), ("PWD".into(), "/home".into())]);
    for escape in ['\\', '`'] {
        let mut lexer = Lexer::new(escape);
        let _ = lexer.process_word(&text, &vars);
        let _ = lexer.process_words(&text, &NoEnv);
        lexer.raw_quotes = true;
        lexer.raw_escapes = true;
        lexer.skip_unset_env = true;
        let _ = lexer.process_words(&text, &vars);
    }
});
