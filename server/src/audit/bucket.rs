//! The WORM bucket: S3-compatible storage with Object Lock. Every segment is
//! written once, with `If-None-Match: *` (a second write of the key is refused)
//! and a COMPLIANCE-mode retention, so until the retain-until date no one —
//! not the root account — can delete or change that version.

use anyhow::Context;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ObjectLockEnabled, ObjectLockMode};
use chrono::{DateTime as ChronoTime, Utc};
use secrecy::ExposeSecret;

use crate::config::BucketSettings;

/// How far the writer's clock and the bucket's may differ.
const CLOCK_SKEW_MAX: chrono::Duration = chrono::Duration::minutes(5);

/// How long one call to the bucket may take, retries included.
const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn chrono_of(time: &DateTime) -> Option<ChronoTime<Utc>> {
    ChronoTime::<Utc>::from_timestamp(time.secs(), time.subsec_nanos())
}

#[derive(Clone)]
pub struct Bucket {
    client: aws_sdk_s3::Client,
    name: String,
    prefix: String,
}

/// What a locked write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    Written {
        version_id: Option<String>,
    },
    /// The key holds an object already; nothing was written.
    Exists,
}

/// One key's versions as listed: its first (the original, which Object Lock
/// keeps) and how many writes and delete markers came after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub key: String,
    pub version_id: Option<String>,
    pub later_versions: usize,
    pub delete_markers: usize,
}

/// An object's lock as the bucket reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub mode: Option<String>,
    pub retain_until: Option<ChronoTime<Utc>>,
    /// When the version was written.
    pub last_modified: Option<ChronoTime<Utc>>,
}

impl Lock {
    /// COMPLIANCE mode, retained at least five years from when it was written.
    pub fn holds_for_five_years(&self) -> Result<ChronoTime<Utc>, String> {
        let (Some("COMPLIANCE"), Some(until)) = (self.mode.as_deref(), self.retain_until) else {
            return Err("is not locked in COMPLIANCE mode".into());
        };
        // Five calendar years from the bucket's own time of writing, less a
        // few minutes for the difference between the writer's clock (which
        // set the date) and the bucket's.
        let written = self.last_modified.unwrap_or(until);
        let five_years = written.checked_add_months(chrono::Months::new(60)).unwrap_or(written);
        if until < five_years - CLOCK_SKEW_MAX {
            return Err(format!("is locked only until {until}, less than five years after it was written"));
        }
        Ok(until)
    }
}

impl Bucket {
    pub fn new(settings: &BucketSettings) -> Bucket {
        let credentials = Credentials::new(
            settings.access_key_id.clone(),
            settings.secret_access_key.expose_secret().to_owned(),
            None,
            None,
            "cekpot-config",
        );
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(Region::new(settings.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(settings.path_style)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            );
        if let Some(endpoint) = &settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Bucket {
            client: aws_sdk_s3::Client::from_conf(config.build()),
            name: settings.name.clone(),
            prefix: settings.prefix.clone(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks the bucket exists with Object Lock on (which keeps versions);
    /// with `create`, makes it (Object Lock is turned on when a bucket is created).
    pub async fn ensure(&self, create: bool) -> anyhow::Result<()> {
        let exists = self.client.head_bucket().bucket(&self.name).send().await.is_ok();
        if !exists {
            anyhow::ensure!(create, "the audit bucket {} does not exist", self.name);
            self.client
                .create_bucket()
                .bucket(&self.name)
                .object_lock_enabled_for_bucket(true)
                .send()
                .await
                .with_context(|| format!("creating the audit bucket {} with Object Lock", self.name))?;
            tracing::info!(bucket = %self.name, "created the audit bucket with Object Lock");
        }
        let lock = self
            .client
            .get_object_lock_configuration()
            .bucket(&self.name)
            .send()
            .await
            .with_context(|| format!("reading the Object Lock configuration of {}", self.name))?;
        let enabled = lock
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| *e == ObjectLockEnabled::Enabled);
        anyhow::ensure!(enabled, "the audit bucket {} does not have Object Lock enabled", self.name);
        Ok(())
    }

    /// Where segment `number` lives.
    pub fn segment_key(&self, number: i64) -> String {
        format!("{}segments/{number:012}.jsonl", self.prefix)
    }

    /// The segment number a key names, if it is a segment's key.
    pub fn segment_number(&self, key: &str) -> Option<i64> {
        key.strip_prefix(&self.prefix)?.strip_prefix("segments/")?.strip_suffix(".jsonl")?.parse().ok()
    }

    /// Writes `bytes` once, locked in COMPLIANCE mode until `retain_until`.
    pub async fn put_locked(
        &self,
        key: &str,
        bytes: Vec<u8>,
        retain_until: ChronoTime<Utc>,
    ) -> anyhow::Result<Put> {
        let sent = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .content_type("application/x-ndjson")
            .body(ByteStream::from(bytes))
            .if_none_match("*")
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from_secs(retain_until.timestamp()))
            .send()
            .await;
        match sent {
            Ok(output) => Ok(Put::Written { version_id: output.version_id().map(str::to_owned) }),
            // 412: the key holds an object; 409: a write of it is in progress.
            Err(error) if error.raw_response().is_some_and(|r| matches!(r.status().as_u16(), 409 | 412)) => {
                Ok(Put::Exists)
            }
            Err(error) => Err(anyhow::Error::new(error).context(format!("writing {key}"))),
        }
    }

    /// The object's bytes (a given version, or the latest); `None` when absent.
    pub async fn get(&self, key: &str, version_id: Option<&str>) -> anyhow::Result<Option<Vec<u8>>> {
        let sent = self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(Into::into))
            .send()
            .await;
        match sent {
            Ok(output) => Ok(Some(output.body.collect().await.context("reading an object's body")?.to_vec())),
            Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(error) => Err(anyhow::Error::new(error).context(format!("reading {key}"))),
        }
    }

    /// The original of every key under the bucket's prefix, in key order.
    pub async fn originals(&self) -> anyhow::Result<Vec<Original>> {
        self.originals_under(&self.prefix).await
    }

    /// The original of one key, if the bucket holds it.
    pub async fn original(&self, key: &str) -> anyhow::Result<Option<Original>> {
        Ok(self.originals_under(key).await?.into_iter().find(|o| o.key == key))
    }

    /// The original of every key starting with `prefix`, in key order.
    async fn originals_under(&self, prefix: &str) -> anyhow::Result<Vec<Original>> {
        struct Seen {
            first: Option<(DateTime, Option<String>)>,
            versions: usize,
            delete_markers: usize,
        }
        let mut keys: std::collections::BTreeMap<String, Seen> = std::collections::BTreeMap::new();
        // ListObjectVersions pages by (key, version) markers.
        let mut markers: (Option<String>, Option<String>) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.name)
                .prefix(prefix)
                .set_key_marker(markers.0.take())
                .set_version_id_marker(markers.1.take())
                .send()
                .await
                .context("listing the audit bucket's versions")?;
            for version in page.versions() {
                let (Some(key), Some(modified)) = (version.key(), version.last_modified()) else { continue };
                let seen = keys.entry(key.to_owned()).or_insert(Seen {
                    first: None,
                    versions: 0,
                    delete_markers: 0,
                });
                seen.versions += 1;
                // S3 lists a key's versions newest first, and times are whole
                // seconds: of versions as old as the oldest so far, the later
                // listed is the older.
                if seen.first.as_ref().is_none_or(|(first, _)| modified <= first) {
                    seen.first = Some((*modified, version.version_id().map(str::to_owned)));
                }
            }
            for marker in page.delete_markers() {
                if let Some(key) = marker.key() {
                    keys.entry(key.to_owned())
                        .or_insert(Seen { first: None, versions: 0, delete_markers: 0 })
                        .delete_markers += 1;
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            markers = (page.next_key_marker().map(Into::into), page.next_version_id_marker().map(Into::into));
        }
        Ok(keys
            .into_iter()
            .filter_map(|(key, seen)| {
                let (_, version_id) = seen.first?;
                Some(Original {
                    key,
                    version_id,
                    later_versions: seen.versions - 1,
                    delete_markers: seen.delete_markers,
                })
            })
            .collect())
    }

    /// Deletes one version: refused by the bucket while it is locked.
    pub async fn delete_version(&self, key: &str, version_id: &str) -> anyhow::Result<()> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map(drop)
            .map_err(|error| anyhow::anyhow!("{}", error.into_service_error()))
    }

    /// A plain overwrite (no `If-None-Match`): a new version on a versioned
    /// bucket, the locked original kept. For tests of what a bucket refuses.
    pub async fn put_plain(&self, key: &str, bytes: Vec<u8>) -> anyhow::Result<Option<String>> {
        let output =
            self.client.put_object().bucket(&self.name).key(key).body(ByteStream::from(bytes)).send().await?;
        Ok(output.version_id().map(str::to_owned))
    }

    /// The lock on one version, as `HEAD` reports it.
    pub async fn lock(&self, key: &str, version_id: Option<&str>) -> anyhow::Result<Lock> {
        let head = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .set_version_id(version_id.map(Into::into))
            .send()
            .await
            .with_context(|| format!("reading {key}'s lock"))?;
        Ok(Lock {
            mode: head.object_lock_mode().map(|m| m.as_str().to_owned()),
            retain_until: head.object_lock_retain_until_date().and_then(chrono_of),
            last_modified: head.last_modified().and_then(chrono_of),
        })
    }
}
