//! JAAS login configuration files, as ZooKeeper operators write them for
//! SASL: sections of login modules with options, of which keeper reads one
//! section (`Server` by default) holding ZooKeeper's `DigestLoginModule`
//! and its `user_<name>="password"` entries.
//!
//! ```text
//! Server {
//!     org.apache.zookeeper.server.auth.DigestLoginModule required
//!     user_super="adminsecret"
//!     user_bob="bobsecret";
//! };
//! ```

use std::collections::BTreeMap;

/// Who may authenticate with SASL: the `Server` section's `user_<name>="password"` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslUsers {
    pub passwords: BTreeMap<String, String>,
}

/// The login module keeper serves (DIGEST-MD5).
const DIGEST_MODULE: &str = "org.apache.zookeeper.server.auth.DigestLoginModule";

/// The users of `section` in the JAAS file `text`, or why there are none.
pub fn server_users(text: &str, section: &str) -> Result<SaslUsers, String> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let next = |at: &mut usize| -> Option<&Token> {
        *at += 1;
        tokens.get(*at - 1)
    };
    while let Some(Token::Word(name)) = next(&mut at) {
        if next(&mut at) != Some(&Token::Open) {
            return Err(format!("section {name}: expected {{"));
        }
        let mut users = SaslUsers::default();
        let mut modules = Vec::new();
        loop {
            match next(&mut at) {
                Some(Token::Close) => break,
                Some(Token::Word(module)) => {
                    modules.push(module.clone());
                    let Some(Token::Word(_flag)) = next(&mut at) else { return Err(format!("section {name}: module {module} has no flag (required...)")) };
                    loop {
                        match next(&mut at) {
                            Some(Token::Semicolon) => break,
                            Some(Token::Word(key)) => {
                                let (Some(Token::Equals), Some(Token::Word(value) | Token::Quoted(value))) = (next(&mut at), next(&mut at)) else {
                                    return Err(format!("section {name}: option {key} has no =value"));
                                };
                                if let Some(user) = key.strip_prefix("user_") {
                                    users.passwords.insert(user.to_string(), value.clone());
                                }
                            }
                            other => return Err(format!("section {name}: unexpected {other:?} in module {module}'s options")),
                        }
                    }
                }
                other => return Err(format!("section {name}: unexpected {other:?}")),
            }
        }
        if next(&mut at) != Some(&Token::Semicolon) {
            return Err(format!("section {name}: expected ; after }}"));
        }
        if name == section {
            if let Some(other) = modules.iter().find(|m| *m != DIGEST_MODULE) {
                return Err(format!(
                    "section {section} uses {other}; keeper serves SASL DIGEST-MD5 only ({DIGEST_MODULE}); Kerberos (GSSAPI) is not supported"
                ));
            }
            if users.passwords.is_empty() {
                return Err(format!("section {section} has no user_<name>=\"password\" entry"));
            }
            return Ok(users);
        }
    }
    if at < tokens.len() {
        return Err(format!("unexpected {:?}", tokens[at - 1]));
    }
    Err(format!("no {section} section"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semicolon,
    Equals,
}

/// Splits JAAS text into tokens (`//` and `/* */` comments skipped).
fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '{' => out.push(Token::Open),
            '}' => out.push(Token::Close),
            ';' => out.push(Token::Semicolon),
            '=' => out.push(Token::Equals),
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                loop {
                    match chars.next() {
                        Some('/') if last == '*' => break,
                        Some(c) => last = c,
                        None => return Err("an unterminated /* comment".into()),
                    }
                }
            }
            '"' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => value.extend(chars.next()),
                        Some('"') => break,
                        Some(c) => value.push(c),
                        None => return Err("an unterminated quoted value".into()),
                    }
                }
                out.push(Token::Quoted(value));
            }
            c => {
                let mut word = c.to_string();
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "{};=\"".contains(n) {
                        break;
                    }
                    word.push(n);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_sections_users_are_read() {
        let text = "// ZooKeeper's example\nServer {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_super=\"adminsecret\"\n  user_bob=\"bob\\\"secret\";\n};\n/* the client's */ Client {\n  org.apache.zookeeper.server.auth.DigestLoginModule required username=\"bob\" password=\"bobsecret\";\n};\n";
        let users = server_users(text, "Server").unwrap();
        assert_eq!(users.passwords.get("super").map(String::as_str), Some("adminsecret"));
        assert_eq!(users.passwords.get("bob").map(String::as_str), Some("bob\"secret"));
        assert!(server_users(text, "Other").unwrap_err().contains("no Other section"));
        let kerberos = "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };";
        assert!(server_users(kerberos, "Server").unwrap_err().contains("Kerberos (GSSAPI) is not supported"));
        assert!(server_users("Server { x required", "Server").is_err());
    }
}
