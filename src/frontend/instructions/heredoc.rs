//! Recognising `<<EOF` words among arguments and preparing heredoc bodies.

/// What a `<<NAME` argument word says about its heredoc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HeredocWord {
    /// The delimiter with quoting removed.
    pub name: String,
    /// False when any part of the delimiter was quoted.
    pub expand: bool,
    /// True for `<<-`.
    pub chomp: bool,
}

/// Reads `word` as a heredoc marker (`<<EOF`, `<<-"EOF"`, `3<<EOF`), `None` when it is not one.
///
/// The delimiter must be a single shell word; anything else (`<<EOF | python`) is a shell
/// command that merely contains a heredoc.
pub(crate) fn parse_heredoc_word(word: &str) -> Option<HeredocWord> {
    // The parser's reading is the one that decided which bodies were read, so the
    // typed instructions must agree with it word for word.
    let heredoc = crate::frontend::parser::parse_heredoc(word)
        .ok()
        .flatten()?;
    Some(HeredocWord {
        name: heredoc.name,
        expand: heredoc.expand,
        chomp: heredoc.chomp,
    })
}

/// Strips the leading tabs of every line, what `<<-` asks for.
pub(crate) fn chomp_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

impl super::Run {
    /// What the step executes once heredocs are taken into account, as BuildKit decides it.
    ///
    /// Without heredocs this is the command. A shell-form command that is just `<<NAME` runs
    /// the first heredoc's body: as a script file when it starts with `#!` (except on Windows
    /// images), otherwise as the shell command text. Any other command is handed to the shell
    /// with the heredoc bodies and terminators put back after it.
    pub fn program(&self, windows: bool) -> Result<super::RunProgram, String> {
        use super::{CommandLine, RunProgram};
        let Some(first) = self.heredocs.first() else {
            return Ok(RunProgram::Command(self.command.clone()));
        };
        let [line] = self.command.args.as_slice() else {
            return Err(invalid_run(&self.command.args));
        };
        if !self.command.prepend_shell {
            return Err(invalid_run(&self.command.args));
        }
        let shell = |text: String| CommandLine {
            args: vec![text],
            prepend_shell: true,
        };
        if parse_heredoc_word(line).is_some() {
            let body = if first.chomp {
                chomp_content(&first.content)
            } else {
                first.content.clone()
            };
            if !windows && body.starts_with("#!") {
                return Ok(RunProgram::Script {
                    name: first.name.clone(),
                    content: body,
                });
            }
            return Ok(RunProgram::Command(shell(body)));
        }
        let mut text = line.clone();
        for heredoc in &self.heredocs {
            text.push('\n');
            text.push_str(&heredoc.content);
            text.push_str(&heredoc.name);
        }
        Ok(RunProgram::Command(shell(text)))
    }
}

fn invalid_run(args: &[String]) -> String {
    format!(
        "parsing produced an invalid run command: [{}]",
        args.join(" ")
    )
}
