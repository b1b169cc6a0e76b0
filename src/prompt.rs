//! Questions asked on the terminal: passwords, codes, yes/no.
//!
//! Prompts go to stderr (stdout carries results). The blocking reads run on
//! tokio's blocking pool so they never stall the runtime's worker threads.

use anyhow::{Context, bail};
use conclave_proto::limits::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use std::io::{self, BufRead, IsTerminal, Write};

/// Environment variable that supplies the password to scripts.
pub const PASSWORD_ENV: &str = "CONCLAVE_PASSWORD";

/// How often a malformed answer is asked again before giving up.
const ATTEMPTS: usize = 3;

/// Whether stdin is a terminal, i.e. whether there is someone to ask.
pub fn interactive() -> bool {
    io::stdin().is_terminal()
}

/// The password of an existing account: `$CONCLAVE_PASSWORD`, else asked for
/// without echo.
pub async fn password() -> anyhow::Result<String> {
    if let Some(password) = password_from_env()? {
        return Ok(password);
    }
    read_hidden("Password: ").await
}

/// A new password: `$CONCLAVE_PASSWORD`, else asked for twice without echo. Its
/// length is checked here so a typo does not cost a round trip; the rest of the
/// policy is the server's.
pub async fn new_password() -> anyhow::Result<String> {
    let password = match password_from_env()? {
        Some(password) => password,
        None => {
            let first = read_hidden("Choose a password: ").await?;
            let second = read_hidden("Repeat the password: ").await?;
            if first != second {
                bail!("the passwords do not match");
            }
            first
        }
    };
    let chars = password.chars().count();
    if chars < PASSWORD_MIN_CHARS {
        bail!("the password is too short: at least {PASSWORD_MIN_CHARS} characters");
    }
    if chars > PASSWORD_MAX_CHARS {
        bail!("the password is too long: at most {PASSWORD_MAX_CHARS} characters");
    }
    Ok(password)
}

/// Asks until `parse` accepts the (trimmed) answer, at most a few times.
pub async fn ask<T>(question: &str, parse: impl Fn(&str) -> Result<T, String>) -> anyhow::Result<T> {
    for _ in 0..ATTEMPTS {
        let Some(answer) = read_line(question.to_owned()).await? else {
            bail!("no answer on stdin (end of input)");
        };
        match parse(answer.trim()) {
            Ok(value) => return Ok(value),
            Err(problem) => eprintln!("{problem}"),
        }
    }
    bail!("no valid answer after {ATTEMPTS} attempts")
}

/// Asks a yes/no question; only `y` or `yes` (any case) is yes.
pub async fn confirm(question: String) -> anyhow::Result<bool> {
    let answer = read_line(question).await?.unwrap_or_default();
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

fn password_from_env() -> anyhow::Result<Option<String>> {
    match std::env::var(PASSWORD_ENV) {
        Ok(password) if !password.is_empty() => Ok(Some(password)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{PASSWORD_ENV} is not valid UTF-8"),
    }
}

async fn read_hidden(prompt: &'static str) -> anyhow::Result<String> {
    let password = tokio::task::spawn_blocking(move || rpassword::prompt_password(prompt))
        .await
        .context("the password prompt failed")?
        .with_context(|| format!("cannot ask for the password (no terminal?); set {PASSWORD_ENV} instead"))?;
    if password.is_empty() {
        bail!("no password given");
    }
    Ok(password)
}

/// Prints `prompt` on stderr and reads one line from stdin; `None` at end of input.
async fn read_line(prompt: String) -> anyhow::Result<Option<String>> {
    tokio::task::spawn_blocking(move || -> anyhow::Result<Option<String>> {
        let mut stderr = io::stderr().lock();
        write!(stderr, "{prompt}").and_then(|()| stderr.flush()).context("cannot write the prompt")?;
        let mut line = String::new();
        let read = io::stdin().lock().read_line(&mut line).context("cannot read from stdin")?;
        Ok((read > 0).then_some(line))
    })
    .await
    .context("the prompt failed")?
}
