//! Just enough DER to read a certificate's subject and subject alternative
//! names for [`PeerCert`](super::PeerCert). rustls has verified the
//! certificate before this runs; still, every read is bounds-checked and a
//! surprise gives `None`, never a panic.

use std::net::IpAddr;

use super::SubjectAltName;

/// One DER element at a time.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    /// The next element's tag and contents.
    fn next(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.0.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        let (contents, rest) = rest.split_at(len);
        self.0 = rest;
        Some((tag, contents))
    }

    /// The next element, which must have tag `want`.
    fn expect(&mut self, want: u8) -> Option<&'a [u8]> {
        match self.next()? {
            (tag, contents) if tag == want => Some(contents),
            _ => None,
        }
    }

    /// Skips the next element if it has tag `tag`.
    fn skip_if(&mut self, tag: u8) {
        if self.0.first() == Some(&tag) {
            let _ = self.next();
        }
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
/// The subjectAltName extension, 2.5.29.17.
const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];

/// The subject as `CN=.., O=..` and the alternative names of the
/// certificate `der`.
pub(super) fn subject_and_sans(der: &[u8]) -> Option<(String, Vec<SubjectAltName>)> {
    let cert = Der(der).expect(SEQUENCE)?;
    let mut tbs = Der(Der(cert).expect(SEQUENCE)?);
    tbs.skip_if(0xa0); // [0] version
    tbs.next()?; // serial number
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    tbs.expect(SEQUENCE)?; // validity
    let subject = name(tbs.expect(SEQUENCE)?);
    tbs.expect(SEQUENCE)?; // subject public key
    tbs.skip_if(0x81); // [1] issuerUniqueID
    tbs.skip_if(0x82); // [2] subjectUniqueID
    let mut sans = Vec::new();
    if let Some(extensions) = tbs.expect(0xa3) {
        let mut list = Der(Der(extensions).expect(SEQUENCE)?);
        while let Some(ext) = list.expect(SEQUENCE) {
            let mut ext = Der(ext);
            let oid = ext.expect(OID)?;
            ext.skip_if(0x01); // critical
            let value = ext.expect(OCTET_STRING)?;
            if oid == SAN_OID {
                sans = alt_names(Der(value).expect(SEQUENCE)?);
            }
        }
    }
    Some((subject, sans))
}

/// A distinguished name, its attributes in order.
fn name(rdns: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rdns = Der(rdns);
    while let Some(set) = rdns.expect(SET) {
        let mut attrs = Der(set);
        while let Some(attr) = attrs.expect(SEQUENCE) {
            let mut attr = Der(attr);
            let (Some(oid), Some((tag, value))) = (attr.expect(OID), attr.next()) else {
                continue;
            };
            parts.push(format!("{}={}", attribute_name(oid), text(tag, value)));
        }
    }
    parts.join(", ")
}

fn attribute_name(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x05] => "serialNumber".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".into(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".into(),
        other => dotted(other),
    }
}

/// An OID in dotted form.
fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A directory string as text.
fn text(tag: u8, value: &[u8]) -> String {
    match tag {
        // BMPString: UTF-16, big-endian.
        0x1e => {
            let units: Vec<u16> = value
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        // UTF8String, PrintableString, T61String, IA5String, VisibleString.
        0x0c | 0x13 | 0x14 | 0x16 | 0x1a => String::from_utf8_lossy(value).into_owned(),
        _ => value.iter().fold(String::from("#"), |mut s, b| {
            s.push_str(&format!("{b:02x}"));
            s
        }),
    }
}

fn alt_names(seq: &[u8]) -> Vec<SubjectAltName> {
    let mut names = Vec::new();
    let mut seq = Der(seq);
    while let Some((tag, value)) = seq.next() {
        let utf8 = || String::from_utf8_lossy(value).into_owned();
        match tag {
            0x81 => names.push(SubjectAltName::Email(utf8())),
            0x82 => names.push(SubjectAltName::Dns(utf8())),
            0x86 => names.push(SubjectAltName::Uri(utf8())),
            0x87 => {
                if let Ok(v4) = <[u8; 4]>::try_from(value) {
                    names.push(SubjectAltName::Ip(IpAddr::from(v4)));
                } else if let Ok(v6) = <[u8; 16]>::try_from(value) {
                    names.push(SubjectAltName::Ip(IpAddr::from(v6)));
                }
            }
            _ => {}
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_rcgen_wrote() {
        let mut params = rcgen::CertificateParams::new(vec![
            "svc.internal".to_string(),
            "127.0.0.1".to_string(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "orders");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Acme");
        params.subject_alt_names.push(rcgen::SanType::URI(
            rcgen::Ia5String::try_from("spiffe://acme/orders").unwrap(),
        ));
        params.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            rcgen::Ia5String::try_from("ops@acme.example").unwrap(),
        ));
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress("::1".parse().unwrap()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let (subject, sans) = subject_and_sans(cert.der()).unwrap();
        assert_eq!(subject, "CN=orders, O=Acme");
        assert_eq!(
            sans,
            vec![
                SubjectAltName::Dns("svc.internal".into()),
                SubjectAltName::Ip("127.0.0.1".parse().unwrap()),
                SubjectAltName::Uri("spiffe://acme/orders".into()),
                SubjectAltName::Email("ops@acme.example".into()),
                SubjectAltName::Ip("::1".parse().unwrap()),
            ]
        );
    }

    #[test]
    fn garbage_gives_none_not_a_panic() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = cert.der().to_vec();
        for cut in 0..der.len() {
            let _ = subject_and_sans(&der[..cut]);
        }
        assert!(subject_and_sans(&[]).is_none());
        assert!(subject_and_sans(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert_eq!(dotted(&[0x2b, 0x06, 0x01]), "1.3.6.1");
    }
}
