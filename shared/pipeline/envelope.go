package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
)

// SheetWorkKind is the kind of a queue message that carries a sheet's work
// ({"kind":"sheet",...}); refresh requests are RefreshKind.
const SheetWorkKind = "sheet"

// sheetWorkMessage is a sheet's work as a queue message: a few hundred
// bytes, whatever the sheet's size (the rows are read by the worker, not
// carried by the queue).
type sheetWorkMessage struct {
	Kind string `json:"kind"`
	SheetWork
}

// EncodeSheetWork makes the queue message of a sheet's work.
func EncodeSheetWork(w SheetWork) ([]byte, error) {
	b, err := json.Marshal(sheetWorkMessage{Kind: SheetWorkKind, SheetWork: w})
	if err != nil {
		return nil, fmt.Errorf("encode the work of sheet %d: %w", w.Sheet.ID, err)
	}
	return b, nil
}

// DecodeSheetWork reads a queue message that is a sheet's work; ok=false for
// any other message.
func DecodeSheetWork(body []byte) (w SheetWork, ok bool, err error) {
	var m sheetWorkMessage
	if json.Unmarshal(body, &m) != nil || m.Kind != SheetWorkKind {
		return SheetWork{}, false, nil
	}
	if m.RunID == "" || m.Sheet.ID == 0 {
		return SheetWork{}, true, errors.New("sheet work message without runId or sheet id")
	}
	return m.SheetWork, true, nil
}
