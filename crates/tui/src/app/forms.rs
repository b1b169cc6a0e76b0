//! The screens before a session exists: the login and registration forms, the
//! TOTP enrolment, the recovery codes, and the trust prompt for a new server.

use conclave_client::{Fingerprint, ServerAddress};

/// One input field of a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// What it asks for.
    pub label: &'static str,
    /// What was typed.
    pub value: String,
    /// Shown as `•` (passwords, codes).
    pub secret: bool,
}

impl Field {
    fn new(label: &'static str, value: &str, secret: bool) -> Self {
        Self { label, value: value.to_owned(), secret }
    }
}

/// The label of the registration form's token field, added when the server
/// lets people register only with a token.
pub const TOKEN_LABEL: &str = "Registration token";

/// Which form is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormKind {
    /// Server, username, password, TOTP or recovery code.
    Login,
    /// Server, username, password twice, and a registration token if the
    /// server asks for one; the TOTP enrolment follows.
    Register,
}

/// A login or registration form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// Which one.
    pub kind: FormKind,
    /// The fields, top to bottom.
    pub fields: Vec<Field>,
    /// The field with the cursor.
    pub focus: usize,
    /// The last failure, for people (untrusted text).
    pub error: Option<String>,
    /// Submitted; waiting for the server.
    pub busy: bool,
}

impl Form {
    /// The login form, pre-filled with what is known.
    #[must_use]
    pub fn login(server: &str, user: &str) -> Self {
        let fields = vec![
            Field::new("Server (host:port)", server, false),
            Field::new("Username", user, false),
            Field::new("Password", "", true),
            Field::new("Authenticator code", "", false),
        ];
        Self::new(FormKind::Login, fields)
    }

    /// The registration form.
    #[must_use]
    pub fn register(server: &str, user: &str) -> Self {
        let fields = vec![
            Field::new("Server (host:port)", server, false),
            Field::new("Username", user, false),
            Field::new("Password", "", true),
            Field::new("Password again", "", true),
        ];
        Self::new(FormKind::Register, fields)
    }

    /// Adds the registration token field (once) and moves the focus to it.
    pub fn add_token_field(&mut self) {
        if self.token().is_none() {
            self.fields.push(Field::new(TOKEN_LABEL, "", false));
        }
        self.focus = self.fields.len() - 1;
    }

    /// The registration token typed, trimmed, if the form has the field.
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.fields.iter().find(|f| f.label == TOKEN_LABEL).map(|f| f.value.trim())
    }

    fn new(kind: FormKind, fields: Vec<Field>) -> Self {
        let focus = fields.iter().position(|f| f.value.is_empty()).unwrap_or(0);
        Self { kind, fields, focus, error: None, busy: false }
    }

    /// The same server and username in the other form.
    #[must_use]
    pub fn switched(&self) -> Self {
        let (server, user) = (self.value(0), self.value(1));
        match self.kind {
            FormKind::Login => Self::register(server, user),
            FormKind::Register => Self::login(server, user),
        }
    }

    /// The value of field `i`, trimmed.
    #[must_use]
    pub fn value(&self, i: usize) -> &str {
        self.fields.get(i).map_or("", |f| f.value.trim())
    }

    /// The focused field's text.
    pub fn focused(&mut self) -> &mut String {
        &mut self.fields[self.focus].value
    }

    /// Moves the focus down (wrapping).
    pub fn next(&mut self) {
        self.focus = (self.focus + 1) % self.fields.len();
    }

    /// Moves the focus up (wrapping).
    pub fn prev(&mut self) {
        self.focus = (self.focus + self.fields.len() - 1) % self.fields.len();
    }

    /// Checks the fields; the server address parsed.
    ///
    /// # Errors
    /// A sentence naming the first problem.
    pub fn validate(&self) -> Result<ServerAddress, String> {
        if let Some(empty) = self.fields.iter().find(|f| f.value.trim().is_empty()) {
            return Err(format!("{} is missing", empty.label));
        }
        let server: ServerAddress =
            self.value(0).parse().map_err(|err| format!("server: {err} (expected host:port)"))?;
        conclave_proto::validate::normalize_username(self.value(1))
            .map_err(|err| format!("username: {err}"))?;
        if self.kind == FormKind::Register && self.fields[2].value != self.fields[3].value {
            return Err("the passwords differ".to_owned());
        }
        if let Some(token) = self.token()
            && conclave_proto::validate::split_registration_token(token).is_none()
        {
            return Err("a registration token looks like 0a1b2c3d4e5f-abcdefghijklmnopqrstuvwxyz".to_owned());
        }
        Ok(server)
    }
}

/// Two-factor enrolment during registration: the QR code and the confirming
/// code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolment {
    /// The server.
    pub server: ServerAddress,
    /// The new username.
    pub user: String,
    /// The chosen password (sent only with the registration).
    pub password: String,
    /// The registration token, when the server asks for one.
    pub token: Option<String>,
    /// The new TOTP secret, base32.
    pub secret: String,
    /// The `otpauth://` URI the QR code encodes.
    pub uri: String,
    /// The code being typed.
    pub code: String,
    /// The last failure (untrusted text).
    pub error: Option<String>,
    /// Submitted; waiting for the server.
    pub busy: bool,
}

/// First contact with a server: its fingerprint, to compare and accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPrompt {
    /// The server.
    pub server: ServerAddress,
    /// The SHA-256 fingerprint of its public key.
    pub fingerprint: Fingerprint,
}
