package jitusers

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// A --format that a subcommand does not print is an error that names the
// ones it does, given before the admin API is asked anything: show has
// no CSV (it printed its table under --format csv), and export no table
// (it wrote JSON Lines under --format table).
func TestUnsupportedFormatIsAnError(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"show", "alice", "--format", "csv"}, `--format "csv": show prints table or json`},
		{[]string{"export", "--format", "table"}, `--format "table": export prints json or csv`},
		{[]string{"disable", "alice", "--format", "csv"}, `--format "csv": disable prints table or json`},
		{[]string{"list", "--format", "yaml"}, `--format "yaml": list prints table, json or csv`},
		{[]string{"signout", "alice", "--format", "json"}, `--format "json": signout prints no formatted output`},
	} {
		root := &cobra.Command{Use: "jit-users", SilenceErrors: true}
		setup(root)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		// Nothing listens there: a format let through would fail on
		// the request instead.
		root.SetArgs(append(c.args, "--address", "127.0.0.1:1"))
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("%v printed %q", c.args, out.String())
		}
	}
}
