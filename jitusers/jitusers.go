// Package jitusers registers the `caddy jit-users` command: the
// directory's operations (list, show, disable, enable, delete, export,
// role grants, TOTP resets) from a shell, through the running Caddy's
// admin API, found the way `caddy reload` finds it.
package jitusers

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

// usage is the command's one-line usage; it names every subcommand.
const usage = "<list|show|disable|enable|delete|export|grant-role|revoke-role|reset-totp|signout|keep> [args] [--address <interface>] [--config <path> [--adapter <name>]] [--format table|json|csv]"

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "jit-users",
		Usage: usage,
		Short: "Lists and changes the users jit_auth keeps",
		Long: `
Operates the directory of a running Caddy with jit_auth, through its admin API
(the /jit_auth/users endpoints). The admin endpoint is taken from --address if
given, else from the --config file, else Caddy's default, as for 'caddy reload'.
<user> is a local ID or a username.

  list [--search s] [--connection c] [--status active|disabled] [--role r]
       [--seen-before t] [--seen-after t]     every matching user
  show <user>                                 one user, its identities and
                                              latest login attempts
  disable <user> [--reason text]              refuse logins and live sessions
  enable <user> [--reason text]
  delete <user> [--yes]                       asks first unless --yes
  export [--format json|csv] [filters]        every user, streamed (JSON Lines)
  grant-role <user> <role>...                 local roles
  revoke-role <user> <role>...
  reset-totp <user>                           remove the TOTP factor
  signout <user>                              end every live session
  keep <user> on|off                          exempt from deprovisioning, or not

Times for --seen-before/--seen-after are RFC 3339 or a duration back from now
(720h, 30d). list prints a table (--format table, the default), JSON Lines
(json) or CSV (csv); show and the commands that change a user print a table
or, with --format json, JSON (delete, signout and reset-totp print one line
and take no --format); export prints JSON Lines (json, the default) or
CSV (csv). Another --format is an error.
`,
		CobraFunc: setup,
	})
}

// setup adds the flags and subcommands to the jit-users command.
func setup(cmd *cobra.Command) {
	cmd.PersistentFlags().String("address", "", "Address of the administration listener, if different from config")
	cmd.PersistentFlags().StringP("config", "c", "", "Configuration file, to find the admin address")
	cmd.PersistentFlags().StringP("adapter", "a", "", "Name of config adapter to apply")
	cmd.PersistentFlags().String("format", "", "Output: table, json or csv, as the subcommand supports")
	var names []string
	for _, sc := range subcommands() {
		cmd.AddCommand(sc)
		names = append(names, sc.Name())
	}
	// Without a run of its own, cobra answers an unknown subcommand
	// (`jit-users disabel bob`) with the help and exit status 0, and a
	// script takes the user for disabled.
	unknown := func(name string) error {
		return fmt.Errorf("unknown subcommand %q; use one of %s (caddy jit-users --help says more)", name, strings.Join(names, ", "))
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		c.SilenceUsage = true
		return unknown(args[0])
	}
	// `jit-users disabel bob --reason x` fails on --reason, a flag of
	// the subcommand meant, not of jit-users: the mistake to report is
	// the name. The subcommands, which inherit this, report their own.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if args := c.Flags().Args(); c == cmd && len(args) > 0 {
			c.SilenceUsage = true
			return unknown(args[0])
		}
		return err
	})
}

// The --format values a subcommand prints, its default first.
var (
	listFormats   = []string{"table", "json", "csv"}
	userFormats   = []string{"table", "json"}
	exportFormats = []string{"json", "csv"}
)

// filterFlags are list's and export's filters, by flag and API parameter.
var filterFlags = [][2]string{{"search", "q"}, {"connection", "connection"}, {"status", "status"}, {"role", "role"}, {"seen-before", "seen_before"}, {"seen-after", "seen_after"}}

func subcommands() []*cobra.Command {
	withFilters := func(c *cobra.Command) *cobra.Command {
		for _, f := range filterFlags {
			c.Flags().String(f[0], "", "filter: "+f[1])
		}
		return c
	}
	withReason := func(c *cobra.Command) *cobra.Command {
		c.Flags().String("reason", "", "Why, for the audit log")
		return c
	}
	del := &cobra.Command{Use: "delete <user>", Short: "Delete a user with its identities, factor, consents and roles", Args: cobra.ExactArgs(1), RunE: run(runDelete, nil)}
	del.Flags().BoolP("yes", "y", false, "Do not ask for confirmation")
	return []*cobra.Command{
		withFilters(&cobra.Command{Use: "list", Short: "List users", Args: cobra.NoArgs, RunE: run(runList, listFormats)}),
		{Use: "show <user>", Short: "Show one user", Args: cobra.ExactArgs(1), RunE: run(runShow, userFormats)},
		withReason(&cobra.Command{Use: "disable <user>", Short: "Disable a user", Args: cobra.ExactArgs(1), RunE: run(runStatus("disable"), userFormats)}),
		withReason(&cobra.Command{Use: "enable <user>", Short: "Enable a user", Args: cobra.ExactArgs(1), RunE: run(runStatus("enable"), userFormats)}),
		del,
		withFilters(&cobra.Command{Use: "export", Short: "Export every user as JSON Lines or CSV", Args: cobra.NoArgs, RunE: run(runExport, exportFormats)}),
		{Use: "grant-role <user> <role>...", Short: "Grant local roles", Args: cobra.MinimumNArgs(2), RunE: run(runRoles("grant_roles"), userFormats)},
		{Use: "revoke-role <user> <role>...", Short: "Revoke local roles", Args: cobra.MinimumNArgs(2), RunE: run(runRoles("revoke_roles"), userFormats)},
		{Use: "reset-totp <user>", Short: "Remove a user's TOTP factor", Args: cobra.ExactArgs(1), RunE: run(runResetTOTP, nil)},
		{Use: "signout <user>", Short: "End every live session of a user", Args: cobra.ExactArgs(1), RunE: run(runSignOut, nil)},
		{Use: "keep <user> on|off", Short: "Exempt a user from deprovisioning (on) or not (off)", Args: cobra.ExactArgs(2), RunE: run(runKeep, userFormats)},
	}
}

// call is one subcommand's run: the admin address, its flags and args.
type call struct {
	cmd    *cobra.Command
	args   []string
	admin  string
	format string
	out    io.Writer
}

// run wraps a subcommand with the admin address lookup and Caddy's
// exit-code habits: an error exits 1, as `caddy reload`'s do, and is
// printed without the usage text. formats are the --format values the
// subcommand prints, its default first (none: it takes no --format);
// another is refused before anything is asked of the admin API, rather
// than printed in some other format.
func run(f func(*call) error, formats []string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		flag := func(n string) string { v, _ := cmd.Flags().GetString(n); return v }
		format := flag("format")
		if err := checkFormat(cmd.Name(), format, formats); err != nil {
			return err
		}
		if format == "" && len(formats) > 0 {
			format = formats[0]
		}
		addr, err := adminAddress(flag("address"), flag("config"), flag("adapter"))
		if err != nil {
			return fmt.Errorf("finding the admin endpoint: %v", err)
		}
		return f(&call{cmd: cmd, args: args, admin: addr, format: format, out: cmd.OutOrStdout()})
	}
}

// adminAddress is the admin endpoint to ask, found as `caddy reload`
// finds it, except that a config file whose admin endpoint is off is an
// error: Caddy would fall back to its default endpoint, where another
// Caddy on the host, with a directory of its own, may answer, and a
// disable or delete would act on that one's user of the name.
func adminAddress(address, configFile, adapter string) (string, error) {
	if address != "" || configFile == "" {
		return caddycmd.DetermineAdminAPIAddress(address, nil, configFile, adapter)
	}
	config, _, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return "", err
	}
	var c struct {
		Admin *caddy.AdminConfig `json:"admin"`
	}
	if json.Unmarshal(config, &c) == nil && c.Admin != nil && c.Admin.Disabled {
		return "", fmt.Errorf("%s turns Caddy's admin API off (admin off), which jit-users works through: turn it on (admin localhost:2019), or give --address of the Caddy you mean", configFile)
	}
	return caddycmd.DetermineAdminAPIAddress("", config, configFile, adapter)
}

// checkFormat says what is wrong with --format for subcommand name,
// which prints formats.
func checkFormat(name, format string, formats []string) error {
	switch {
	case format == "" || slices.Contains(formats, format):
		return nil
	case len(formats) == 0:
		return fmt.Errorf("--format %q: %s prints no formatted output; leave --format out", format, name)
	}
	list, last := formats[:len(formats)-1], formats[len(formats)-1]
	if len(list) > 0 {
		last = strings.Join(list, ", ") + " or " + last
	}
	return fmt.Errorf("--format %q: %s prints %s", format, name, last)
}

// request calls the admin API; an error status comes back as an error
// with Caddy's message.
func (c *call) request(method, uri string, body any) (*http.Response, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	resp, err := caddycmd.AdminAPIRequest(c.admin, method, uri, nil, r)
	if err != nil {
		return nil, adminMessage(err)
	}
	return resp, nil
}

// adminMessage turns Caddy's "caddy responded with error: HTTP 404:
// {"error":"…"}" into the message alone, with the status.
func adminMessage(err error) error {
	msg := err.Error()
	i := strings.Index(msg, "{")
	if i < 0 {
		return err
	}
	var body struct {
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(msg[i:]), &body) != nil || body.Error == "" {
		return err
	}
	return errors.New(strings.TrimSpace(strings.TrimPrefix(msg[:i], "caddy responded with error: ")) + " " + body.Error)
}

// userPath is the admin API path of the user ref names. A name "." or
// ".." (kept from a version that gave names a leading '.') is sent with
// its dots escaped: as is, it is a dot segment, which Caddy's admin
// endpoint cleans away before jit_auth sees the path, and the request
// reaches another endpoint (reset-totp of "." would delete the user
// named "totp").
func userPath(ref string) string {
	esc := url.PathEscape(ref)
	if ref == "." || ref == ".." {
		esc = strings.ReplaceAll(esc, ".", "%2E")
	}
	return "/jit_auth/users/" + esc
}

// filters is the query string of list's and export's flags.
func (c *call) filters() url.Values {
	v := url.Values{}
	for _, f := range filterFlags {
		if s, _ := c.cmd.Flags().GetString(f[0]); s != "" {
			v.Set(f[1], s)
		}
	}
	return v
}

// summary is a user as the list shows it.
type summary struct {
	ID          string   `json:"id"`
	Username    string   `json:"username"`
	Email       string   `json:"email"`
	Status      string   `json:"status"`
	Roles       []string `json:"roles"`
	LastLoginAt string   `json:"last_login_at"`
}

func runList(c *call) error {
	if c.format == "json" || c.format == "csv" {
		return c.stream(map[string]string{"json": "jsonl", "csv": "csv"}[c.format])
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tSTATUS\tEMAIL\tROLES\tLAST LOGIN\tID")
	q := c.filters()
	q.Set("limit", "1000")
	for {
		resp, err := c.request(http.MethodGet, "/jit_auth/users?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		var page struct {
			Users      []summary `json:"users"`
			NextCursor string    `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("reading the list: %v", err)
		}
		for _, u := range page.Users {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", shown(u.Username), shown(u.Status), shown(u.Email), shown(strings.Join(u.Roles, ",")), shown(orDash(u.LastLoginAt)), shown(u.ID))
		}
		if page.NextCursor == "" {
			return tw.Flush()
		}
		q.Set("cursor", page.NextCursor)
	}
}

// shown makes a value from the directory safe to print on a terminal. A
// user's name, email and subject come from the provider's claims, which
// the user sets: an escape sequence there could rewrite the operator's
// screen, set the window title or write the clipboard (OSC 52), a tab or
// newline would forge the table's columns and lines, and a
// bidirectional override would show the text reordered. Such characters
// are shown escaped, as Go quotes them ("\x1b", "\u202e").
func shown(s string) string {
	if !strings.ContainsFunc(s, unsafeOnTerminal) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeOnTerminal(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unsafeOnTerminal: control characters (C0, DEL, C1) and the
// bidirectional and other invisible format characters.
func unsafeOnTerminal(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// stream copies the export in format (jsonl or csv) to the output.
func (c *call) stream(format string) error {
	q := c.filters()
	q.Set("format", format)
	resp, err := c.request(http.MethodGet, "/jit_auth/users?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(c.out, resp.Body); err != nil {
		return err
	}
	// Written after the users, so a script can tell a whole export from
	// one the store or the connection cut short (the output's last line
	// says why).
	if done := resp.Trailer.Get("Jit-Auth-Export"); done != "complete" {
		return fmt.Errorf("export incomplete: not every user was written (%s)", cmp.Or(done, "the answer ended early"))
	}
	return nil
}

func runExport(c *call) error {
	return c.stream(map[string]string{"json": "jsonl", "csv": "csv"}[c.format])
}

func runShow(c *call) error {
	resp, err := c.request(http.MethodGet, userPath(c.args[0]), nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return c.printUser(resp.Body)
}

// printUser prints a user view the API answered: indented JSON with
// --format json, else the fields an operator reads first.
func (c *call) printUser(body io.Reader) error {
	raw, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if c.format == "json" {
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return err
		}
		_, err := fmt.Fprintln(c.out, out.String())
		return err
	}
	var u struct {
		summary
		Name            string `json:"name"`
		TOTPEnrolled    bool   `json:"totp_enrolled"`
		StatusReason    string `json:"status_reason"`
		StatusChangedAt string `json:"status_changed_at"`
		Keep            bool   `json:"keep"`
		Identities      []struct {
			Connection  string `json:"connection"`
			Subject     string `json:"subject"`
			LastLoginAt string `json:"last_login_at"`
		} `json:"identities"`
		LoginHistory []struct {
			At         string `json:"at"`
			Connection string `json:"connection"`
			Outcome    string `json:"outcome"`
		} `json:"login_history"`
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		return fmt.Errorf("reading the user: %v", err)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "username\t%s\nid\t%s\nstatus\t%s\nname\t%s\nemail\t%s\nroles\t%s\ntotp\t%v\nlast login\t%s\n",
		shown(u.Username), shown(u.ID), shown(u.Status), shown(u.Name), shown(u.Email), shown(strings.Join(u.Roles, ",")), u.TOTPEnrolled, shown(orDash(u.LastLoginAt)))
	if u.StatusChangedAt != "" {
		fmt.Fprintf(tw, "status changed\t%s %s\n", shown(u.StatusChangedAt), shown(u.StatusReason))
	}
	fmt.Fprintf(tw, "keep\t%v\n", u.Keep)
	for _, id := range u.Identities {
		fmt.Fprintf(tw, "identity\t%s %s (last login %s)\n", shown(id.Connection), shown(id.Subject), shown(orDash(id.LastLoginAt)))
	}
	for _, e := range u.LoginHistory {
		fmt.Fprintf(tw, "login\t%s %s %s\n", shown(e.At), shown(e.Connection), shown(e.Outcome))
	}
	return tw.Flush()
}

func runStatus(action string) func(*call) error {
	return func(c *call) error {
		var body any
		if r, _ := c.cmd.Flags().GetString("reason"); r != "" {
			body = map[string]string{"reason": r}
		}
		resp, err := c.request(http.MethodPost, userPath(c.args[0])+"/"+action, body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return c.printUser(resp.Body)
	}
}

func runDelete(c *call) error {
	if yes, _ := c.cmd.Flags().GetBool("yes"); !yes {
		fmt.Fprintf(c.cmd.ErrOrStderr(), "Delete user %q with its identities, second factor, consents and roles? Its username, unless an email address, is retired: no one else gets it. Type yes to confirm: ", c.args[0])
		line, _ := bufio.NewReader(c.cmd.InOrStdin()).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("not deleted: not confirmed (use --yes to skip the question)")
		}
	}
	resp, err := c.request(http.MethodDelete, userPath(c.args[0]), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	_, err = fmt.Fprintf(c.out, "deleted %s\n", c.args[0])
	return err
}

func runKeep(c *call) error {
	var keep bool
	switch c.args[1] {
	case "on":
		keep = true
	case "off":
	default:
		return fmt.Errorf("keep %s %s: use on or off", c.args[0], c.args[1])
	}
	resp, err := c.request(http.MethodPatch, userPath(c.args[0]), map[string]bool{"keep": keep})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return c.printUser(resp.Body)
}

func runRoles(field string) func(*call) error {
	return func(c *call) error {
		resp, err := c.request(http.MethodPatch, userPath(c.args[0]), map[string][]string{field: c.args[1:]})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return c.printUser(resp.Body)
	}
}

func runResetTOTP(c *call) error {
	resp, err := c.request(http.MethodDelete, userPath(c.args[0])+"/totp", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	_, err = fmt.Fprintf(c.out, "TOTP reset for %s\n", c.args[0])
	return err
}

func runSignOut(c *call) error {
	resp, err := c.request(http.MethodPost, userPath(c.args[0])+"/signout", nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	_, err = fmt.Fprintf(c.out, "signed out everywhere: %s\n", c.args[0])
	return err
}
