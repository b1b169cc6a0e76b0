//! What keys and `/commands` mean, independent of which key produced them.
//!
//! [`Action`] is the vocabulary of the key map; [`SlashCommand`] is a parsed
//! line of the composer that starts with `/`. Both are plain data, so
//! [`App::update`](crate::app::App::update) can be tested without a terminal.

/// Something the user asked for with a key or the mouse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Leave the program.
    Quit,
    /// Enter: send, run a command, submit a form.
    Submit,
    /// Alt-Enter: a line break in the message.
    Newline,
    /// Type a character.
    Insert(char),
    /// Delete the character before the cursor.
    Backspace,
    /// Delete the character under the cursor.
    Delete,
    /// Cursor one character left.
    Left,
    /// Cursor one character right.
    Right,
    /// Cursor to the start of the line.
    Home,
    /// Cursor to the end of the line.
    End,
    /// Ctrl-U: clear the input.
    ClearInput,
    /// Up arrow: previous field, previous user, line above.
    Up,
    /// Down arrow: next field, next user, line below.
    Down,
    /// Tab: complete a command or name; next form field.
    Complete,
    /// Shift-Tab: previous form field.
    BackTab,
    /// Ctrl-N: next conversation.
    NextRoom,
    /// Ctrl-P: previous conversation.
    PrevRoom,
    /// Alt-1..9: conversation by position (0-based).
    GoToRoom(usize),
    /// Page Up.
    PageUp,
    /// Page Down.
    PageDown,
    /// Mouse wheel up.
    WheelUp,
    /// Mouse wheel down.
    WheelDown,
    /// Alt-Up: select the previous message (for `/delete`).
    SelectOlder,
    /// Alt-Down: select the next message.
    SelectNewer,
    /// Ctrl-O: move the focus to the user list (Enter opens a direct conversation).
    FocusUsers,
    /// Ctrl-R on the login screen: register instead (and back).
    SwitchForm,
    /// Esc: close an overlay, drop a selection, leave the user list.
    Cancel,
    /// F1: the help overlay.
    Help,
}

/// A composer line starting with `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlashCommand {
    /// `/join #room`.
    Join(String),
    /// `/create name [--public]`.
    Create {
        /// Room name.
        name: String,
        /// Anyone may join.
        public: bool,
    },
    /// `/invite user...`.
    Invite(Vec<String>),
    /// `/remove user`.
    Remove(String),
    /// `/leave`.
    Leave,
    /// `/dm user`.
    Direct(String),
    /// `/delete`: the selected message, else the user's last one.
    Delete,
    /// `/members`.
    Members,
    /// `/devices`: lists the user's devices; `/devices remove ID` removes one.
    Devices(Option<i64>),
    /// `/mute`: toggles notifications for the conversation.
    Mute,
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
}

/// Every command with its argument synopsis and what it does, for `/help` and
/// completion.
pub const COMMANDS: &[(&str, &str, &str)] = &[
    ("/join", "#room", "join a public room"),
    ("/create", "name [--public]", "create a room (private unless --public)"),
    ("/invite", "user...", "add people to this room"),
    ("/remove", "user", "remove a user from this room"),
    ("/leave", "", "leave this room"),
    ("/dm", "user", "open the direct conversation with a user"),
    ("/delete", "", "delete the selected (Alt-Up/Down) or your last message"),
    ("/members", "", "list this room's members"),
    ("/devices", "[remove ID]", "list your devices, or remove a lost one"),
    ("/mute", "", "silence (or unmute) this conversation"),
    ("/help", "", "keys and commands"),
    ("/quit", "", "leave Conclave"),
];

impl SlashCommand {
    /// Parses a composer line that starts with `/`.
    ///
    /// # Errors
    /// A sentence for the user: unknown command, missing or extra argument.
    pub fn parse(line: &str) -> Result<Self, String> {
        let mut words = line.split_whitespace();
        let name = words.next().unwrap_or("/");
        let args: Vec<&str> = words.collect();
        let one = |what: &str| -> Result<String, String> {
            match args.as_slice() {
                [arg] => Ok((*arg).trim_start_matches('@').to_owned()),
                _ => Err(format!("usage: {name} {what}")),
            }
        };
        let none = |command: Self| -> Result<Self, String> {
            if args.is_empty() { Ok(command) } else { Err(format!("{name} takes no arguments")) }
        };
        match name {
            "/join" | "/j" => one("#room").map(|r| Self::Join(r.trim_start_matches('#').to_owned())),
            "/create" => {
                let public = args.contains(&"--public");
                let names: Vec<&&str> = args.iter().filter(|a| **a != "--public").collect();
                match names.as_slice() {
                    [name] => Ok(Self::Create { name: name.trim_start_matches('#').to_owned(), public }),
                    _ => Err("usage: /create name [--public]".to_owned()),
                }
            }
            "/invite" | "/add" => match args.as_slice() {
                [] => Err(format!("usage: {name} user...")),
                users => {
                    Ok(Self::Invite(users.iter().map(|u| u.trim_start_matches('@').to_owned()).collect()))
                }
            },
            "/remove" | "/kick" => one("user").map(Self::Remove),
            "/leave" | "/part" => none(Self::Leave),
            "/dm" | "/msg" | "/query" => one("user").map(Self::Direct),
            "/delete" => none(Self::Delete),
            "/members" | "/names" => none(Self::Members),
            "/devices" => match args.as_slice() {
                [] => Ok(Self::Devices(None)),
                ["remove", id] => id
                    .parse::<i64>()
                    .map(|id| Self::Devices(Some(id)))
                    .map_err(|_| "usage: /devices remove ID (a number from /devices)".to_owned()),
                _ => Err("usage: /devices [remove ID]".to_owned()),
            },
            "/mute" => none(Self::Mute),
            "/help" | "/?" => Ok(Self::Help),
            "/quit" | "/exit" => Ok(Self::Quit),
            other => Err(format!("unknown command {other}; /help lists them")),
        }
    }
}

/// Completions for the word being typed: command names for the first word,
/// user names (for `/invite`, `/remove`, `/dm`) or room names (for `/join`)
/// after it, and for `/invite`, which names several users, after each. Sorted,
/// without duplicates.
#[must_use]
pub fn completions(line: &str, users: &[String], rooms: &[String]) -> Vec<String> {
    let Some(rest) = line.strip_prefix('/') else { return Vec::new() };
    match rest.split_once(' ') {
        None => COMMANDS.iter().map(|(c, _, _)| (*c).to_owned()).filter(|c| c.starts_with(line)).collect(),
        Some((command, args)) if !args.contains(' ') || command == "invite" => {
            let (named, arg) = args.rsplit_once(' ').map_or(("", args), |(named, arg)| (named, arg));
            let shown =
                if named.is_empty() { format!("/{command} ") } else { format!("/{command} {named} ") };
            let candidates: Vec<String> = match command {
                "invite" => users
                    .iter()
                    .filter(|u| !named.split(' ').any(|n| n.trim_start_matches('@') == *u))
                    .cloned()
                    .collect(),
                "remove" | "dm" => users.to_vec(),
                "join" => rooms.iter().map(|r| format!("#{r}")).collect(),
                _ => Vec::new(),
            };
            let arg = arg.trim_start_matches('@');
            let mut matches: Vec<String> = candidates
                .into_iter()
                .filter(|c| {
                    c.starts_with(arg) || c.trim_start_matches('#').starts_with(arg.trim_start_matches('#'))
                })
                .map(|c| format!("{shown}{c}"))
                .collect();
            matches.sort();
            matches.dedup();
            matches
        }
        Some(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_their_arguments() {
        assert_eq!(SlashCommand::parse("/join #team"), Ok(SlashCommand::Join("team".into())));
        assert_eq!(
            SlashCommand::parse("/create ops --public"),
            Ok(SlashCommand::Create { name: "ops".into(), public: true })
        );
        assert_eq!(SlashCommand::parse("/dm @bob"), Ok(SlashCommand::Direct("bob".into())));
        assert_eq!(SlashCommand::parse("/delete"), Ok(SlashCommand::Delete));
        assert!(SlashCommand::parse("/invite").is_err());
        assert_eq!(
            SlashCommand::parse("/invite @bob carol"),
            Ok(SlashCommand::Invite(vec!["bob".into(), "carol".into()]))
        );
        assert!(SlashCommand::parse("/leave now").is_err());
        assert!(SlashCommand::parse("/frobnicate").unwrap_err().contains("/help"));
        assert_eq!(SlashCommand::parse("/devices"), Ok(SlashCommand::Devices(None)));
        assert_eq!(SlashCommand::parse("/devices remove 7"), Ok(SlashCommand::Devices(Some(7))));
        assert!(SlashCommand::parse("/devices remove seven").unwrap_err().contains("usage"));
        assert!(SlashCommand::parse("/devices 7").is_err());
    }

    #[test]
    fn completion_offers_commands_then_names() {
        assert_eq!(completions("/d", &[], &[]), ["/dm", "/delete", "/devices"]);
        let users = vec!["bob".to_owned(), "bert".to_owned(), "carol".to_owned()];
        assert_eq!(completions("/dm b", &users, &[]), ["/dm bert", "/dm bob"]);
        assert_eq!(completions("/join #t", &[], &["team".to_owned()]), ["/join #team"]);
        assert!(completions("hello", &users, &[]).is_empty());
        assert_eq!(completions("/invite bob b", &users, &[]), ["/invite bob bert"], "each user once");
        assert_eq!(completions("/invite bob c", &users, &[]), ["/invite bob carol"]);
        assert!(completions("/dm bob c", &users, &[]).is_empty(), "/dm names one user");
    }
}
