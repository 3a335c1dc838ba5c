//! The per-node sample read as the body streams in (`SampleReader`): cut anywhere into
//! chunks (within a line, within a UTF-8 character), every exposition of the corpus gives
//! the sample the whole body gives, and an error names the same line.

use chrono::{DateTime, TimeZone, Utc};
use kongup::metrics::sample::{ExpositionError, NodeSample, SampleReader};
use kongup::testkit::corpus;

fn at() -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000, 0).unwrap()
}

/// Feeds `body` in the chunks `cuts` (ascending offsets) makes of it.
fn streamed(body: &[u8], cuts: &[usize]) -> Result<NodeSample, ExpositionError> {
    let mut reader = SampleReader::new(at());
    let mut from = 0;
    for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
        reader.feed(&body[from..cut])?;
        from = cut;
    }
    reader.finish()
}

/// Random cuts, `1..=max_chunk` bytes apart.
fn random_cuts(rng: &mut fastrand::Rng, len: usize, max_chunk: usize) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut at = 0;
    loop {
        at += rng.usize(1..=max_chunk);
        if at >= len {
            return cuts;
        }
        cuts.push(at);
    }
}

#[test]
fn every_corpus_exposition_cut_anywhere_reads_as_the_whole_body() {
    let files = corpus::files("metrics_", ".txt");
    assert!(files.len() >= 12, "the corpus's expositions");
    let mut rng = fastrand::Rng::with_seed(17);
    for file in files {
        let text = file.text();
        let label = format!("{}/{}", file.version, file.name);
        let whole = NodeSample::parse(&text, at()).unwrap_or_else(|e| panic!("{label}: {e}"));
        let body = text.as_bytes();
        // One byte at a time: every boundary at once.
        let every: Vec<usize> = (1..body.len()).collect();
        assert_eq!(
            streamed(body, &every).unwrap(),
            whole,
            "{label}, byte by byte"
        );
        for max_chunk in [2, 7, 64, 1500, 16 * 1024] {
            for _ in 0..20 {
                let cuts = random_cuts(&mut rng, body.len(), max_chunk);
                assert_eq!(
                    streamed(body, &cuts).unwrap(),
                    whole,
                    "{label}, cut at {cuts:?}"
                );
            }
        }
        // Without its last newline: the last line is read when the body ends.
        let trimmed = text.trim_end_matches('\n');
        assert_eq!(
            streamed(trimmed.as_bytes(), &[trimmed.len() / 2]).unwrap(),
            whole,
            "{label}, no final newline"
        );
    }
}

#[test]
fn a_bad_line_is_named_wherever_the_chunks_are_cut() {
    let text = corpus::file("3.9.1", "metrics_dp.txt").text();
    let mut lines: Vec<&str> = text.lines().collect();
    let bad_line = lines.len() / 2;
    lines.insert(bad_line, "kong_http_requests_total{code=\"200\" 1");
    let broken = lines.join("\n");
    let whole = NodeSample::parse(&broken, at()).unwrap_err();
    assert!(
        whole
            .to_string()
            .contains(&format!("line {}", bad_line + 1)),
        "{whole}"
    );
    let mut rng = fastrand::Rng::with_seed(3);
    for max_chunk in [1, 5, 100, 4096] {
        let cuts = random_cuts(&mut rng, broken.len(), max_chunk);
        let error = streamed(broken.as_bytes(), &cuts).unwrap_err();
        assert_eq!(error.to_string(), whole.to_string(), "cut at {cuts:?}");
    }
}

#[test]
fn bytes_that_are_not_utf8_are_named_by_line_even_cut_within_a_character() {
    // "é" is two bytes; a cut between them is still text.
    let text = "# HELP kong_x caf\u{e9}\nkong_datastore_reachable 1\n";
    let cut = text.find('\u{e9}').unwrap() + 1;
    assert!(streamed(text.as_bytes(), &[cut]).is_ok());
    let mut body = text.as_bytes().to_vec();
    body.extend_from_slice(b"kong_datastore_reachable \xff\n");
    for cut in [1, cut, body.len() - 2] {
        let error = streamed(&body, &[cut]).unwrap_err();
        assert!(
            matches!(error, ExpositionError::NotText { line: 3 }),
            "cut at {cut}: {error}"
        );
    }
}
