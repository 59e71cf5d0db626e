//! rustls_get HOST PORT CERT.pem PATH...: GETs each PATH over one keep-alive HTTPS
//! connection to 127.0.0.1:PORT (rustls; the server's name is HOST, trusted through the
//! certificate in CERT.pem) and prints "PATH STATUS" per response. Bounded: one request
//! per PATH, 10 s of socket timeout.
//! rustls_get --sleep SECONDS: only waits (at most 60 s), so that a test can have kspan
//! find the binary before the run that counts.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

// The first certificate of a PEM file, as DER (rustls-pemfile is not in Debian 12).
fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {}", c),
        }
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in body.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        acc = (acc << 6) | value(c);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--sleep" {
        let seconds: u64 = args[2].parse().expect("seconds");
        std::thread::sleep(Duration::from_secs(seconds.min(60)));
        return;
    }
    if args.len() < 5 {
        eprintln!("usage: rustls_get HOST PORT CERT.pem PATH...");
        std::process::exit(2);
    }
    let (host, port) = (&args[1], args[2].parse::<u16>().expect("port"));
    let pem = std::fs::read_to_string(&args[3]).expect("certificate");
    let mut roots = rustls::RootCertStore::empty();
    roots.add(&rustls::Certificate(pem_to_der(&pem))).expect("trust anchor");
    let config = rustls::ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::ServerName::try_from(host.as_str()).expect("server name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("connection");
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let tls = rustls::Stream::new(&mut conn, &mut sock);
    let mut reader = BufReader::new(tls);
    for path in &args[4..] {
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: rustls_get\r\nAccept: */*\r\n\r\n",
            path, host, port
        );
        reader.get_mut().write_all(request.as_bytes()).expect("write");
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status = status_line.split_whitespace().nth(1).unwrap_or("?").to_string();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().expect("content-length");
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).expect("body");
        println!("{} {}", path, status);
    }
}
