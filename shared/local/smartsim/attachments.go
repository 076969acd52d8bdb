package smartsim

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// MaxAttachmentBytes is Smartsheet's upload limit.
const MaxAttachmentBytes = 30 << 20

type attachmentRec struct {
	ID             int64           `json:"id"`
	SheetID        int64           `json:"sheetId"`
	ParentType     string          `json:"parentType"`
	ParentID       int64           `json:"parentId"`
	RootID         int64           `json:"rootId"`
	Superseded     bool            `json:"superseded,omitempty"`
	Name           string          `json:"name"`
	Description    string          `json:"description,omitempty"`
	AttachmentType string          `json:"attachmentType"`
	MimeType       string          `json:"mimeType,omitempty"`
	URL            string          `json:"url,omitempty"`
	CreatedAt      time.Time       `json:"createdAt"`
	CreatedBy      smartsheet.User `json:"createdBy"`
	Data           []byte          `json:"data,omitempty"`
}

func (a *attachmentRec) wire(downloadBase string) smartsheet.Attachment {
	at, by := a.CreatedAt, a.CreatedBy
	out := smartsheet.Attachment{
		ID: a.ID, Name: a.Name, Description: a.Description, AttachmentType: a.AttachmentType,
		MimeType: a.MimeType, ParentType: a.ParentType, ParentID: a.ParentID,
		CreatedAt: &at, CreatedBy: &by, URL: a.URL,
	}
	if a.AttachmentType == "FILE" {
		out.SizeInKb = int64((len(a.Data) + 1023) / 1024)
		if downloadBase != "" {
			out.URL = downloadBase + "/files/" + strconv.FormatInt(a.ID, 10)
			out.URLExpiresInMillis = 120000
		}
	}
	return out
}

// upload is a decoded attachment request body.
type upload struct {
	name, mimeType, description, url, kind string
	data                                   []byte
}

func readUpload(r *http.Request) (upload, *apiError) {
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	body := http.MaxBytesReader(nil, r.Body, MaxAttachmentBytes+1)
	switch {
	case mt == "application/json":
		var in smartsheet.Attachment
		if err := json.NewDecoder(body).Decode(&in); err != nil {
			return upload{}, errBadJSON(err)
		}
		if in.URL == "" {
			return upload{}, errMissing("attachment.url")
		}
		if in.AttachmentType == "" || in.AttachmentType == "FILE" {
			return upload{}, errBadParam(in.AttachmentType, "attachmentType")
		}
		return upload{name: in.Name, description: in.Description, url: in.URL, kind: in.AttachmentType}, nil
	case mt == "multipart/form-data":
		if err := r.ParseMultipartForm(MaxAttachmentBytes); err != nil {
			return upload{}, errBadJSON(err)
		}
		f, h, err := r.FormFile("file")
		if err != nil {
			return upload{}, errMissing("file")
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			return upload{}, errBadJSON(err)
		}
		return upload{name: h.Filename, mimeType: h.Header.Get("Content-Type"), data: data, kind: "FILE"}, nil
	default:
		_, params, err := mime.ParseMediaType(r.Header.Get("Content-Disposition"))
		name := params["filename"]
		if err != nil || name == "" {
			return upload{}, errMissing("Content-Disposition filename")
		}
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		data, err := io.ReadAll(body)
		if err != nil {
			return upload{}, &apiError{status: 400, code: 1018, msg: "The file is larger than the 30 MB limit."}
		}
		if r.ContentLength >= 0 && int64(len(data)) != r.ContentLength {
			return upload{}, errBadParam(strconv.FormatInt(r.ContentLength, 10), "Content-Length")
		}
		return upload{name: name, mimeType: mt, data: data, kind: "FILE"}, nil
	}
}

func downloadBase(r *http.Request) string { return "http://" + r.Host }

// attach stores an attachment (or a new version of rootID) under s.mu.
func (s *Server) attach(sh *sheetRec, parentType string, parentID, rootID int64, up upload, e Edit) (*attachmentRec, []ChangeEvent) {
	tx := s.begin(sh, e)
	a := &attachmentRec{
		ID: s.st.nextID(), SheetID: sh.ID, ParentType: parentType, ParentID: parentID,
		Name: up.name, Description: up.description, AttachmentType: up.kind, MimeType: up.mimeType,
		URL: up.url, CreatedAt: tx.edit.At, CreatedBy: tx.edit.User, Data: up.data,
	}
	a.RootID = a.ID
	if rootID != 0 {
		a.RootID = rootID
		for _, old := range s.st.Attachments {
			if old.RootID == rootID {
				old.Superseded = true
			}
		}
	}
	if a.MimeType == "" && a.AttachmentType == "FILE" {
		a.MimeType = "application/octet-stream"
	}
	s.st.Attachments[a.ID] = a
	sh.Attachments = append(sh.Attachments, a.ID)
	ev := EventCreated
	if rootID != 0 {
		ev = EventUpdated
	}
	tx.record(ObjectAttachment, ev, a.ID, rowOf(parentType, parentID), 0)
	return a, tx.commit()
}

func rowOf(parentType string, id int64) int64 {
	if parentType == "ROW" {
		return id
	}
	return 0
}

func attachHandler(toRow bool) apiHandler {
	return func(s *Server, q *request) (any, *apiError) {
		var rowID int64
		if toRow {
			var aerr *apiError
			if rowID, aerr = q.pathID("rowId"); aerr != nil {
				return nil, aerr
			}
		}
		up, aerr := readUpload(q.r)
		if aerr != nil {
			return nil, aerr
		}
		if up.kind == "FILE" && len(up.data) > MaxAttachmentBytes {
			return nil, &apiError{status: 400, code: 1018, msg: "The file is larger than the 30 MB limit."}
		}
		s.mu.Lock()
		sh, aerr := s.sheetForWrite(q)
		if aerr != nil {
			s.mu.Unlock()
			return nil, aerr
		}
		parentType, parentID := "SHEET", sh.ID
		if toRow {
			if sh.row(rowID) == nil {
				s.mu.Unlock()
				return nil, errNotFound()
			}
			parentType, parentID = "ROW", rowID
		}
		a, evs := s.attach(sh, parentType, parentID, 0, up, q.edit())
		out := success(a.wire(""), sh.Version)
		s.mu.Unlock()
		s.dispatch(evs)
		return out, nil
	}
}

// attachmentFor finds an attachment of the request's sheet; callers hold s.mu.
func (s *Server) attachmentFor(q *request) (*sheetRec, *attachmentRec, *apiError) {
	sh, aerr := s.sheetForWrite(q)
	if aerr != nil {
		return nil, nil, aerr
	}
	id, aerr := q.pathID("attachmentId")
	if aerr != nil {
		return nil, nil, aerr
	}
	a := s.st.Attachments[id]
	if a == nil || a.SheetID != sh.ID {
		return nil, nil, errNotFound()
	}
	return sh, a, nil
}

func attachNewVersion(s *Server, q *request) (any, *apiError) {
	up, aerr := readUpload(q.r)
	if aerr != nil {
		return nil, aerr
	}
	if up.kind != "FILE" {
		return nil, errBadParam(up.kind, "attachmentType")
	}
	s.mu.Lock()
	sh, old, aerr := s.attachmentFor(q)
	if aerr != nil {
		s.mu.Unlock()
		return nil, aerr
	}
	if old.AttachmentType != "FILE" {
		s.mu.Unlock()
		return nil, errBadParam(old.AttachmentType, "attachmentType")
	}
	a, evs := s.attach(sh, old.ParentType, old.ParentID, old.RootID, up, q.edit())
	out := success(a.wire(""), sh.Version)
	s.mu.Unlock()
	s.dispatch(evs)
	return out, nil
}

func getAttachment(s *Server, q *request) (any, *apiError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, a, aerr := s.attachmentFor(q)
	if aerr != nil {
		return nil, aerr
	}
	return a.wire(downloadBase(q.r)), nil
}

func (s *Server) listAttachmentsLocked(match func(*attachmentRec) bool) []smartsheet.Attachment {
	var recs []*attachmentRec
	for _, a := range s.st.Attachments {
		if match(a) {
			recs = append(recs, a)
		}
	}
	slices.SortFunc(recs, func(a, b *attachmentRec) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return int(b.ID - a.ID)
	})
	out := make([]smartsheet.Attachment, 0, len(recs))
	for _, a := range recs {
		out = append(out, a.wire(""))
	}
	return out
}

func listAttachments(toRow bool) apiHandler {
	return func(s *Server, q *request) (any, *apiError) {
		p, aerr := parsePaging(q.r.URL.Query())
		if aerr != nil {
			return nil, aerr
		}
		var rowID int64
		if toRow {
			if rowID, aerr = q.pathID("rowId"); aerr != nil {
				return nil, aerr
			}
		}
		s.mu.RLock()
		defer s.mu.RUnlock()
		sh, aerr := s.sheetForWrite(q)
		if aerr != nil {
			return nil, aerr
		}
		if toRow && sh.row(rowID) == nil {
			return nil, errNotFound()
		}
		return indexResult(p, s.listAttachmentsLocked(func(a *attachmentRec) bool {
			return a.SheetID == sh.ID && !a.Superseded && (!toRow || (a.ParentType == "ROW" && a.ParentID == rowID))
		})), nil
	}
}

func listVersions(s *Server, q *request) (any, *apiError) {
	p, aerr := parsePaging(q.r.URL.Query())
	if aerr != nil {
		return nil, aerr
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, a, aerr := s.attachmentFor(q)
	if aerr != nil {
		return nil, aerr
	}
	return indexResult(p, s.listAttachmentsLocked(func(o *attachmentRec) bool { return o.RootID == a.RootID })), nil
}

// AttachmentData returns the bytes and the metadata of a file attachment.
func (s *Server) AttachmentData(id int64) ([]byte, smartsheet.Attachment, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.st.Attachments[id]
	if a == nil {
		return nil, smartsheet.Attachment{}, fmt.Errorf("smartsim: attachment %d not found", id)
	}
	return slices.Clone(a.Data), a.wire(""), nil
}

// serveFile answers the temporary download URL of a file attachment.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("attachmentId"), 10, 64)
	s.mu.RLock()
	a := s.st.Attachments[id]
	s.mu.RUnlock()
	if err != nil || a == nil || a.AttachmentType != "FILE" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.MimeType)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": a.Name}))
	w.Header().Set("Content-Length", strconv.Itoa(len(a.Data)))
	_, _ = w.Write(a.Data)
}

// AttachmentVersions counts the versions of an attachment (1 when it was
// never replaced).
func (s *Server) AttachmentVersions(id int64) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.st.Attachments[id]
	if a == nil {
		return 0
	}
	n := 0
	for _, o := range s.st.Attachments {
		if o.RootID == a.RootID {
			n++
		}
	}
	return n
}
