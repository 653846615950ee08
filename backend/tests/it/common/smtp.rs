//! A fake SMTP server on loopback, speaking just enough of RFC 5321 for lettre: the 220
//! greeting, EHLO (advertising 8BITMIME and AUTH PLAIN, no STARTTLS), AUTH, MAIL, RCPT, DATA
//! (354, the text up to the lone '.', 250), RSET, NOOP and QUIT. It records every accepted
//! message and can be told to answer MAIL with a temporary 451, or to take a message and
//! hang up without answering (the send's outcome is then unknown to the client).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The envelope sender (MAIL FROM).
    pub from: String,
    /// The envelope recipients (RCPT TO).
    pub to: Vec<String>,
    /// The message as sent after DATA, soft line breaks of quoted-printable undone.
    pub text: String,
}

/// What the fake has seen; shared with the test.
#[derive(Default)]
pub struct FakeSmtp {
    failing: AtomicBool,
    hang_up_after_data: AtomicBool,
    mail_commands: AtomicUsize,
    mails: Mutex<Vec<Mail>>,
    auths: Mutex<Vec<String>>,
}

impl FakeSmtp {
    /// Whether MAIL is answered `451 4.3.0` (a temporary failure).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Whether a message is taken and the connection then closed without the final 250.
    pub fn set_hang_up_after_data(&self, hang_up: bool) {
        self.hang_up_after_data.store(hang_up, Ordering::SeqCst);
    }

    /// MAIL commands seen, refused ones included: one per attempt.
    pub fn attempts(&self) -> usize {
        self.mail_commands.load(Ordering::SeqCst)
    }

    /// The accepted messages, in order.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap().clone()
    }

    /// The AUTH lines received (base64 as sent).
    pub fn auths(&self) -> Vec<String> {
        self.auths.lock().unwrap().clone()
    }
}

/// Starts the fake; returns its `host:port` and its record.
pub async fn serve() -> (String, Arc<FakeSmtp>) {
    let fake = Arc::new(FakeSmtp::default());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = fake.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let fake = shared.clone();
            tokio::spawn(async move {
                let _ = session(stream, &fake).await;
            });
        }
    });
    (addr.to_string(), fake)
}

async fn session(stream: tokio::net::TcpStream, fake: &FakeSmtp) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 fake.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-fake.test\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n250 SIZE 1000000\r\n"
        } else if upper.starts_with("AUTH") {
            fake.auths.lock().unwrap().push(line.clone());
            b"235 2.7.0 accepted\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            fake.mail_commands.fetch_add(1, Ordering::SeqCst);
            if fake.failing.load(Ordering::SeqCst) {
                b"451 4.3.0 try again later\r\n"
            } else {
                from = address(&line);
                to.clear();
                b"250 2.1.0 ok\r\n"
            }
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(&line));
            b"250 2.1.5 ok\r\n"
        } else if upper == "DATA" {
            write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut text = String::new();
            while let Some(data) = lines.next_line().await? {
                if data == "." {
                    break;
                }
                text.push_str(data.strip_prefix('.').unwrap_or(&data));
                text.push('\n');
            }
            let text = text.replace("=\n", "");
            fake.mails.lock().unwrap().push(Mail {
                from: std::mem::take(&mut from),
                to: std::mem::take(&mut to),
                text,
            });
            if fake.hang_up_after_data.load(Ordering::SeqCst) {
                return Ok(());
            }
            b"250 2.0.0 queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else {
            // RSET, NOOP.
            b"250 2.0.0 ok\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}

/// The address between `<` and `>` of a MAIL or RCPT line.
fn address(line: &str) -> String {
    let start = line.find('<').map_or(0, |i| i + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end].to_owned()
}
