package caddymodule

import (
	"context"
	"strings"
	"testing"

	"github.com/caddyserver/certmagic"
)

// Two instances that generated different pairs against one empty storage:
// the first to save wins, the second's start fails instead of sealing
// cookies the first cannot open, and saving the pair that is there is a
// no-op (a second Start of the same generation).
func TestSaveKeysRace(t *testing.T) {
	ctx := context.Background()
	st := &certmagic.FileStorage{Path: t.TempDir()}
	a, b := []byte(`[{"hash_key":"a","block_key":"a"}]`), []byte(`[{"hash_key":"b","block_key":"b"}]`)
	if err := saveKeys(ctx, st, a); err != nil {
		t.Fatal(err)
	}
	if err := saveKeys(ctx, st, a); err != nil {
		t.Fatalf("saving the stored pair again: %v", err)
	}
	if err := saveKeys(ctx, st, b); err == nil || !strings.Contains(err.Error(), "start again") {
		t.Fatalf("a second, different pair: %v, want the start refused", err)
	}
	if got, _ := st.Load(ctx, storageKeysPath); string(got) != string(a) {
		t.Fatalf("stored %s, want the first pair", got)
	}
}
