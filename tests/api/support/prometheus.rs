//! A small reader of the Prometheus text format, so tests compare values under labels
//! rather than whole lines.

use std::collections::BTreeMap;

/// One sample line: `name{label="value",...} number`.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A scrape: its samples and the `# TYPE` of each metric family.
pub struct Scrape {
    pub samples: Vec<Sample>,
    pub types: BTreeMap<String, String>,
}

pub fn parse(text: &str) -> Scrape {
    let mut scrape = Scrape {
        samples: Vec::new(),
        types: BTreeMap::new(),
    };
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            scrape.types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        scrape.samples.push(parse_sample(line));
    }
    scrape
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).expect("a metric name");
    let name = line[..name_end].to_owned();
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices();
        let (mut key, mut value) = (String::new(), String::new());
        let mut in_value = false;
        loop {
            let (i, c) = chars.next().expect("labels end with }");
            match (in_value, c) {
                (false, '}') => {
                    rest = &inner[i + 1..];
                    break;
                }
                (false, ',') => {}
                (false, '=') => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                    in_value = true;
                }
                (false, c) => key.push(c),
                (true, '\\') => match chars.next().expect("an escape").1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (true, '"') => {
                    labels.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                    in_value = false;
                }
                (true, c) => value.push(c),
            }
        }
    }
    let value = rest.trim().split(' ').next().expect("a value");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("value in {line}")),
    };
    Sample {
        name,
        labels,
        value,
    }
}

impl Scrape {
    /// The sum of `name`'s samples whose labels include all of `labels`; 0 when none match.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_reads_labels_with_escapes() {
        let scrape = parse(
            "# TYPE x counter\nx{a=\"1\",b=\"q\\\"uote\\\\\"} 3\ny 1.5\nz_bucket{le=\"+Inf\"} 2\n",
        );
        assert_eq!(scrape.types["x"], "counter");
        assert_eq!(scrape.sum("x", &[("b", "q\"uote\\")]), 3.0);
        assert_eq!(scrape.sum("y", &[]), 1.5);
        assert_eq!(scrape.sum("z_bucket", &[("le", "+Inf")]), 2.0);
    }
}
