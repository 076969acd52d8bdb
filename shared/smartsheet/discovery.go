package smartsheet

import (
	"context"
	"fmt"
)

// Me returns the token's user (GET /users/me); a cheap token check.
func (c *Client) Me(ctx context.Context) (*UserProfile, error) {
	var u UserProfile
	if err := c.doJSON(ctx, "GET /users/me", "GET", "/users/me", nil, nil, &u, 0); err != nil {
		return nil, fmt.Errorf("get current user: %w", err)
	}
	return &u, nil
}

// GetFolder reads a folder with its sheets and sub-folders.
func (c *Client) GetFolder(ctx context.Context, folderID int64) (*Folder, error) {
	var f Folder
	if err := c.doJSON(ctx, "GET /folders/{folderId}", "GET", "/folders/"+id(folderID), nil, nil, &f, 0); err != nil {
		return nil, fmt.Errorf("get folder %d: %w", folderID, err)
	}
	return &f, nil
}

// GetWorkspace reads a workspace with its sheets and folders.
func (c *Client) GetWorkspace(ctx context.Context, workspaceID int64) (*Workspace, error) {
	var w Workspace
	if err := c.doJSON(ctx, "GET /workspaces/{workspaceId}", "GET", "/workspaces/"+id(workspaceID), nil, nil, &w, 0); err != nil {
		return nil, fmt.Errorf("get workspace %d: %w", workspaceID, err)
	}
	return &w, nil
}

// DiscoveredSheet is a sheet found by DiscoverSheets with where it was found.
type DiscoveredSheet struct {
	SheetSummary
	// Path is the container names from the workspace or folder given down to
	// the sheet's folder, e.g. ["Field Ops", "2024", "Invoices"].
	Path []string
}

// DiscoverSheets returns every sheet in the given folders and workspaces and
// in all their sub-folders, each once (first path wins), in discovery order.
// Every folder is read with its own GetFolder call, so nested contents do not
// depend on the server returning the whole tree.
func (c *Client) DiscoverSheets(ctx context.Context, folderIDs, workspaceIDs []int64) ([]DiscoveredSheet, error) {
	d := discovery{c: c, seenFolders: map[int64]bool{}, seenSheets: map[int64]bool{}}
	for _, wid := range workspaceIDs {
		w, err := c.GetWorkspace(ctx, wid)
		if err != nil {
			return d.out, fmt.Errorf("discover sheets: %w", err)
		}
		path := []string{w.Name}
		d.addSheets(w.Sheets, path)
		for _, f := range w.Folders {
			if err := d.folder(ctx, f.ID, path); err != nil {
				return d.out, fmt.Errorf("discover sheets: %w", err)
			}
		}
	}
	for _, fid := range folderIDs {
		if err := d.folder(ctx, fid, nil); err != nil {
			return d.out, fmt.Errorf("discover sheets: %w", err)
		}
	}
	return d.out, nil
}

type discovery struct {
	c           *Client
	seenFolders map[int64]bool
	seenSheets  map[int64]bool
	out         []DiscoveredSheet
}

func (d *discovery) folder(ctx context.Context, folderID int64, parent []string) error {
	if d.seenFolders[folderID] {
		return nil
	}
	d.seenFolders[folderID] = true
	f, err := d.c.GetFolder(ctx, folderID)
	if err != nil {
		return err
	}
	path := append(append([]string(nil), parent...), f.Name)
	d.addSheets(f.Sheets, path)
	for _, sub := range f.Folders {
		if err := d.folder(ctx, sub.ID, path); err != nil {
			return err
		}
	}
	return nil
}

func (d *discovery) addSheets(sheets []SheetSummary, path []string) {
	for _, s := range sheets {
		if d.seenSheets[s.ID] {
			continue
		}
		d.seenSheets[s.ID] = true
		d.out = append(d.out, DiscoveredSheet{SheetSummary: s, Path: path})
	}
}
