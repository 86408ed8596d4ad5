//! Variable expansion of the fields BuildKit expands, through a caller-supplied word expander.

use super::mount::{WordExpander as Expander, parse_mount};
use super::{Instruction, KeyValue};

impl Instruction {
    /// Expands, in place, exactly the fields BuildKit expands for this instruction.
    ///
    /// Each instruction's struct documents the fields this touches. Command text (RUN, CMD,
    /// ENTRYPOINT, HEALTHCHECK) is never expanded here: the shell does that at run time. For
    /// RUN this is also where mounts are fully parsed, so mount errors surface here, as they
    /// do in BuildKit.
    pub fn expand(
        &mut self,
        expand: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<(), String> {
        match self {
            Instruction::From(from) => {
                from.image = expand(&from.image)?;
                expand_option(&mut from.platform, expand)?;
            }
            Instruction::Run(run) => {
                run.mounts = run
                    .mount_specs
                    .iter()
                    .map(|spec| parse_mount(spec, Some(&mut *expand)))
                    .collect::<Result<_, _>>()?;
            }
            Instruction::Label(label) => expand_pairs(&mut label.labels, expand)?,
            Instruction::Env(env) => expand_pairs(&mut env.vars, expand)?,
            Instruction::Expose(expose) => {
                let mut ports = Vec::with_capacity(expose.ports.len());
                for port in &expose.ports {
                    // BuildKit splits EXPOSE words after expansion, so `$PORTS` may give several.
                    ports.extend(expand(port)?.split_whitespace().map(str::to_string));
                }
                expose.ports = ports;
            }
            Instruction::Add(add) => {
                expand_option(&mut add.chown, expand)?;
                expand_option(&mut add.chmod, expand)?;
                expand_option(&mut add.checksum, expand)?;
                expand_all(&mut add.sources, expand)?;
                add.dest = expand(&add.dest)?;
            }
            Instruction::Copy(copy) => {
                expand_option(&mut copy.chown, expand)?;
                expand_option(&mut copy.chmod, expand)?;
                expand_all(&mut copy.sources, expand)?;
                copy.dest = expand(&copy.dest)?;
            }
            Instruction::Volume(volume) => expand_all(&mut volume.paths, expand)?,
            Instruction::User(user) => user.user = expand(&user.user)?,
            Instruction::Workdir(workdir) => workdir.path = expand(&workdir.path)?,
            Instruction::StopSignal(stop) => stop.signal = expand(&stop.signal)?,
            Instruction::Arg(arg) => {
                for (_, default) in &mut arg.args {
                    expand_option(default, expand)?;
                }
            }
            Instruction::Cmd(_)
            | Instruction::Maintainer(_)
            | Instruction::Entrypoint(_)
            | Instruction::Onbuild(_)
            | Instruction::Healthcheck(_)
            | Instruction::Shell(_) => {}
        }
        Ok(())
    }

    /// Expands the contents of COPY/ADD heredocs whose delimiter was not quoted.
    ///
    /// BuildKit expands these with quotes left untouched (a file's `"` stays), which needs a
    /// different expander from [`Instruction::expand`]; other instructions are unchanged.
    pub fn expand_heredocs(
        &mut self,
        expand: &mut dyn FnMut(&str) -> Result<String, String>,
    ) -> Result<(), String> {
        let heredocs = match self {
            Instruction::Copy(copy) => &mut copy.heredocs,
            Instruction::Add(add) => &mut add.heredocs,
            _ => return Ok(()),
        };
        for heredoc in heredocs.iter_mut().filter(|h| h.expand) {
            heredoc.content = expand(&heredoc.content)?;
        }
        Ok(())
    }
}

fn expand_option(value: &mut Option<String>, expand: &mut Expander<'_>) -> Result<(), String> {
    if let Some(text) = value {
        *text = expand(text)?;
    }
    Ok(())
}

fn expand_all(values: &mut [String], expand: &mut Expander<'_>) -> Result<(), String> {
    for value in values {
        *value = expand(value)?;
    }
    Ok(())
}

fn expand_pairs(pairs: &mut [KeyValue], expand: &mut Expander<'_>) -> Result<(), String> {
    for pair in pairs {
        pair.key = expand(&pair.key)?;
        pair.value = expand(&pair.value)?;
    }
    Ok(())
}
