//! F4 in the app: which file to edit and how, the editor's and the
//! check's news, the "remote changed" answer, and the upload's end.

use crossterm::event::KeyEvent;
use ferry_proto::msg::EntryKind;

use super::{App, Link};
use crate::transfer::{Conflict, Direction};
use crate::tui::action::Effect;
use crate::tui::dialog::Dialog;
use crate::tui::edit::{
    EditChoice, EditDialog, EditNews, EditSession, EditTarget, EditWork, Verdict, EDIT_LIMIT,
};
use crate::tui::pane::Side;
use crate::tui::queue::{JobSpec, JobState};

/// Edits under way.
#[derive(Debug, Default)]
pub struct Edits {
    /// The remote file being fetched, edited or checked.
    pub busy: Option<String>,
    /// Uploads of edited copies: (job, session, remote path written);
    /// the copy goes once the job verified.
    pub uploads: Vec<(u64, EditSession, String)>,
}

impl App {
    /// F4: edits the file under the cursor (a local one in place, a remote
    /// one through a private copy).
    pub(super) fn start_edit(&mut self) -> Vec<Effect> {
        if let Some(name) = &self.edit.busy {
            let text = format!("still busy editing {name}");
            self.info(text);
            return vec![];
        }
        let side = self.focused_side();
        let e = self.pane(side).current().cloned();
        let Some(e) = e.filter(|e| e.kind != EntryKind::Dir) else {
            self.info("F4 edits files (Enter opens a directory)");
            return vec![];
        };
        match (side, e.kind) {
            (Side::Local, _) => {
                let path = self.local_dir.join(&e.name);
                vec![Effect::Edit(EditWork::Run(EditTarget::Local(path)))]
            }
            (Side::Remote, EntryKind::File) => {
                if !matches!(self.link, Link::Online(_)) {
                    self.error("not connected");
                    return vec![];
                }
                if e.size > EDIT_LIMIT {
                    self.error(format!(
                        "{} is {} MiB: F4 edits files up to {} MiB (F5 copies it to edit it locally)",
                        e.name,
                        e.size >> 20,
                        EDIT_LIMIT >> 20
                    ));
                    return vec![];
                }
                self.edit.busy = Some(e.name.clone());
                self.info(format!("fetching {} to edit it…", e.name));
                vec![Effect::Edit(EditWork::Fetch {
                    remote: self.join(Side::Remote, &e.name),
                    dir: self.dir_of(Side::Remote),
                    name: e.name,
                })]
            }
            (Side::Remote, _) => {
                self.info("F4 edits regular files (this is a link: edit what it points to)");
                vec![]
            }
        }
    }

    /// News of an edit.
    pub(super) fn edit_news(&mut self, news: EditNews) -> Vec<Effect> {
        match news {
            EditNews::Fetched(Ok(session)) => {
                vec![Effect::Edit(EditWork::Run(EditTarget::Remote(session)))]
            }
            EditNews::Fetched(Err(e)) => {
                self.edit.busy = None;
                self.error(e);
                vec![]
            }
            EditNews::Exited {
                target: EditTarget::Local(path),
                result,
            } => {
                match result {
                    Ok(()) => self.info(format!("edited {}", path.display())),
                    Err(e) => self.error(e),
                }
                self.refresh(Side::Local)
            }
            EditNews::Exited {
                target: EditTarget::Remote(session),
                result,
            } => {
                self.info(format!("checking {}…", session.name));
                vec![Effect::Edit(EditWork::Check {
                    session,
                    failed: result.err(),
                })]
            }
            EditNews::Checked {
                session,
                failed,
                result,
            } => {
                self.edit.busy = None;
                self.checked(session, failed, result)
            }
        }
    }

    fn checked(
        &mut self,
        session: EditSession,
        failed: Option<String>,
        result: Result<(Verdict, String), String>,
    ) -> Vec<Effect> {
        let kept = format!("your copy is kept at {}", session.file.display());
        match (failed, result) {
            (_, Err(e)) => {
                self.error(format!("{e}: nothing uploaded; {kept}"));
                vec![]
            }
            (Some(why), Ok((Verdict::Unchanged, _))) => {
                self.error(format!("{why}: nothing uploaded"));
                vec![Effect::Edit(EditWork::Discard(session))]
            }
            (Some(why), Ok(_)) => {
                self.error(format!("{why}: nothing uploaded; {kept}"));
                vec![]
            }
            (None, Ok((Verdict::Unchanged, _))) => {
                self.info(format!(
                    "{} was not changed: nothing uploaded",
                    session.name
                ));
                vec![Effect::Edit(EditWork::Discard(session))]
            }
            (None, Ok((Verdict::RemoteChanged(why), spare))) => {
                self.message = None;
                self.dialog = Some(Dialog::Edit(EditDialog {
                    session,
                    why,
                    spare,
                }));
                vec![]
            }
            (None, Ok(_)) => self.upload_edit(session, None),
        }
    }

    /// Uploads the edited copy (verified, atomically, through the queue):
    /// over the remote file, or as `spare` beside it.
    fn upload_edit(&mut self, session: EditSession, spare: Option<String>) -> Vec<Effect> {
        let conflict = if spare.is_some() {
            Conflict::Fail
        } else {
            Conflict::Overwrite
        };
        let name = spare.unwrap_or_else(|| session.name.clone());
        let to = format!("{}/{name}", session.dir.trim_end_matches('/'));
        let spec = JobSpec {
            direction: Direction::Put,
            sources: vec![session.file.display().to_string()].into(),
            dest: session.dir.clone(),
            name: Some(name),
            conflict,
            follow_links: false,
            sync: None,
        };
        let job = self.queue.push(spec.clone());
        self.info(format!("uploading the edited {}…", session.name));
        self.edit.uploads.push((job, session, to));
        vec![Effect::StartJob { job, spec }]
    }

    /// The answer of the "remote changed" dialog.
    pub(super) fn edit_dialog_key(&mut self, d: EditDialog, key: KeyEvent) -> Vec<Effect> {
        match d.key(&key) {
            EditChoice::Asking => {
                self.dialog = Some(Dialog::Edit(d));
                vec![]
            }
            EditChoice::Overwrite => self.upload_edit(d.session, None),
            EditChoice::KeepBeside => self.upload_edit(d.session, Some(d.spare)),
            EditChoice::Discard => {
                self.info(format!("your changes to {} were discarded", d.session.name));
                vec![Effect::Edit(EditWork::Discard(d.session))]
            }
            EditChoice::Leave => {
                self.info(format!(
                    "nothing uploaded; your copy is kept at {}",
                    d.session.file.display()
                ));
                vec![]
            }
        }
    }

    /// A job ended: if it uploaded an edited copy, the copy goes once
    /// verified; otherwise it stays, and the message says where.
    pub(super) fn edit_job_ended(&mut self, job: u64) -> Vec<Effect> {
        let Some(at) = self.edit.uploads.iter().position(|(j, ..)| *j == job) else {
            return vec![];
        };
        let state = self.queue.get_mut(job).map(|j| j.state.clone());
        match state {
            Some(JobState::Done) => {
                let (_, session, to) = self.edit.uploads.remove(at);
                self.info(format!("{to} saved on the server (verified)"));
                vec![Effect::Edit(EditWork::Discard(session))]
            }
            Some(JobState::Failed(e)) => {
                let file = self.edit.uploads[at].1.file.display().to_string();
                self.error(format!(
                    "the upload failed: {e}; your copy is kept at {file} (r in the queue retries)"
                ));
                vec![]
            }
            _ => {
                let file = self.edit.uploads[at].1.file.display().to_string();
                self.info(format!("not uploaded; your copy is kept at {file}"));
                vec![]
            }
        }
    }
}
