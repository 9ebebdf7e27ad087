package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// parseEnum parses the value of an enum whose names start with prefix, given
// with or without the prefix, in any case, with "-" for "_". It rejects the
// zero (UNSPECIFIED) value and returns an error listing the valid names.
func parseEnum(s, prefix string, values map[string]int32) (int32, error) {
	name := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	if !strings.HasPrefix(name, prefix) {
		name = prefix + name
	}
	if v, ok := values[name]; ok && v != 0 {
		return v, nil
	}
	return 0, fmt.Errorf("unknown value %q; want one of %s", s, strings.Join(enumNames(prefix, values), ", "))
}

// enumNames returns the names of values without prefix, in value order,
// leaving out the zero value.
func enumNames(prefix string, values map[string]int32) []string {
	var names []string
	for n, v := range values {
		if v != 0 {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool { return values[names[i]] < values[names[j]] })
	for i, n := range names {
		names[i] = strings.TrimPrefix(n, prefix)
	}
	return names
}

// queueRegionsFlag collects repeated --queue-region QUEUE=REGION flags. An
// empty value adds nothing, so `--queue-region ""` alone clears the map.
type queueRegionsFlag map[string]string

// String returns the pairs in queue order.
func (q queueRegionsFlag) String() string { return labelsFlag(q).String() }

// Set adds one QUEUE=REGION pair. It returns an error when either side is
// empty or the queue was given before.
func (q queueRegionsFlag) Set(s string) error {
	if s == "" {
		return nil
	}
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" || v == "" {
		return fmt.Errorf("want QUEUE=REGION, got %q", s)
	}
	if _, dup := q[k]; dup {
		return fmt.Errorf("queue %q given twice", k)
	}
	q[k] = v
	return nil
}

const retentionPrefix = "RETENTION_CATEGORY_"

// retentionFlag collects repeated --retention CATEGORY=DAYS flags in order.
// An empty value adds nothing, so `--retention ""` alone clears the rules.
type retentionFlag []*sealgatev1.RetentionRule

// String returns the rules as CATEGORY=DAYS pairs.
func (r *retentionFlag) String() string {
	if r == nil {
		return ""
	}
	pairs := make([]string, len(*r))
	for i, rule := range *r {
		pairs[i] = fmt.Sprintf("%s=%d", shortEnum(rule.GetCategory().String(), retentionPrefix), rule.GetRetentionDays())
	}
	return strings.Join(pairs, ",")
}

// Set adds one rule. CATEGORY is a RetentionCategory with or without its
// prefix, e.g. RECORDINGS_AND_TRANSCRIPTS; DAYS is a whole number, whose
// range the gateway checks.
func (r *retentionFlag) Set(s string) error {
	if s == "" {
		return nil
	}
	cat, days, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("want CATEGORY=DAYS, got %q", s)
	}
	c, err := parseEnum(cat, retentionPrefix, sealgatev1.RetentionCategory_value)
	if err != nil {
		return fmt.Errorf("category: %w", err)
	}
	d, err := strconv.ParseInt(strings.TrimSpace(days), 10, 32)
	if err != nil {
		return fmt.Errorf("days: want a whole number, got %q", days)
	}
	*r = append(*r, &sealgatev1.RetentionRule{
		Category:      sealgatev1.RetentionCategory(c),
		RetentionDays: int32(d),
	})
	return nil
}

const entityPrefix = "ENTITY_TYPE_"

// entityTypes parses a comma-separated list of entity types ("" is none,
// which the gateway reads as all).
func entityTypes(s string) ([]sealgatev1.EntityType, error) {
	var out []sealgatev1.EntityType
	for _, part := range strings.Split(s, ",") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		v, err := parseEnum(part, entityPrefix, sealgatev1.EntityType_value)
		if err != nil {
			return nil, err
		}
		out = append(out, sealgatev1.EntityType(v))
	}
	return out, nil
}

// blockRulesFlag collects repeated --block-rule flags in order. An empty
// value adds nothing, so `--block-rule ""` alone clears the rules.
type blockRulesFlag []*sealgatev1.BlockingRule

func (b *blockRulesFlag) String() string {
	if b == nil {
		return ""
	}
	var parts []string
	for _, r := range *b {
		parts = append(parts, r.GetId()+"="+r.GetPattern())
	}
	return strings.Join(parts, " ")
}

// Set adds one rule, ID=PATTERN or ID@TYPE,TYPE=PATTERN (the pattern may
// hold '='); the gateway checks the id and compiles the pattern.
func (b *blockRulesFlag) Set(s string) error {
	if s == "" {
		return nil
	}
	r, err := parseRule(s)
	if err != nil {
		return err
	}
	*b = append(*b, r)
	return nil
}

func parseRule(s string) (*sealgatev1.BlockingRule, error) {
	head, pattern, ok := strings.Cut(s, "=")
	if !ok || head == "" {
		return nil, fmt.Errorf("want ID=PATTERN or ID@TYPE,TYPE=PATTERN, got %q", s)
	}
	id, types, _ := strings.Cut(head, "@")
	r := &sealgatev1.BlockingRule{Id: id, Pattern: pattern}
	for _, t := range strings.Split(types, ",") {
		if strings.TrimSpace(t) == "" {
			continue
		}
		v, err := parseArtifactType(t)
		if err != nil {
			return nil, err
		}
		r.ArtifactTypes = append(r.ArtifactTypes, v)
	}
	return r, nil
}

// settingsFlags are the flags of `sealctl settings set`.
type settingsFlags struct {
	homeRegion     string
	localized      bool
	storageRegion  string
	queueRegions   queueRegionsFlag
	keyMode        string
	customerKeyURI string
	retention      retentionFlag
	deletionMode   string
	redact         bool
	redactTypes    string
	mask           bool
	maskTypes      string
	maskChar       string
	maskKeep       int
	blockRules     blockRulesFlag
}

// settingsPaths maps each flag of `settings set` to its update_mask path,
// in the order the mask lists them.
var settingsPaths = []struct{ flag, path string }{
	{"home-region", "home_region"},
	{"localized", "localized"},
	{"storage-region", "storage_region"},
	{"queue-region", "queue_storage_regions"},
	{"key-mode", "key_policy.mode"},
	{"customer-key-uri", "key_policy.customer_key_uri"},
	{"retention", "retention_rules"},
	{"deletion-mode", "deletion_mode"},
	{"redact", "privacy_policy.redaction.enabled"},
	{"redact-types", "privacy_policy.redaction.entity_types"},
	{"mask", "privacy_policy.masking.enabled"},
	{"mask-types", "privacy_policy.masking.entity_types"},
	{"mask-char", "privacy_policy.masking.masking_character"},
	{"mask-keep", "privacy_policy.masking.unmasked_suffix_length"},
	{"block-rule", "privacy_policy.blocking_rules"},
}

// register adds the settings flags to fs.
func (f *settingsFlags) register(fs *flag.FlagSet) {
	f.queueRegions = queueRegionsFlag{}
	fs.StringVar(&f.homeRegion, "home-region", "", "`region` where the account was provisioned")
	fs.BoolVar(&f.localized, "localized", false, "keep all content in the home region (--localized=true|false)")
	fs.StringVar(&f.storageRegion, "storage-region", "", "account-level storage `region`")
	fs.Var(f.queueRegions, "queue-region", "storage region of a queue, `QUEUE=REGION` (repeatable; replaces all queue regions)")
	fs.StringVar(&f.keyMode, "key-mode", "", "key `mode`: PROVIDER, CUSTOMER or CUSTOMER_AND_PROVIDER")
	fs.StringVar(&f.customerKeyURI, "customer-key-uri", "", "`URI` of the customer's key, e.g. hcvault://HOST:PORT/transit/keys/NAME")
	fs.Var(&f.retention, "retention", "retention rule `CATEGORY=DAYS` (repeatable; replaces all rules)")
	fs.StringVar(&f.deletionMode, "deletion-mode", "", "deletion `mode`: SOFT or HARD")
	fs.BoolVar(&f.redact, "redact", false, "redact personal data in transcripts and messages at upload (--redact=true|false)")
	fs.StringVar(&f.redactTypes, "redact-types", "", "entity `types` to redact, e.g. PHONE_NUMBER,PAYMENT_CARD (empty: all)")
	fs.BoolVar(&f.mask, "mask", false, "mask personal data in text read without pii_viewer (--mask=true|false)")
	fs.StringVar(&f.maskTypes, "mask-types", "", "entity `types` to mask (empty: all)")
	fs.StringVar(&f.maskChar, "mask-char", "", "masking `character` (default X)")
	fs.IntVar(&f.maskKeep, "mask-keep", 4, "trailing letters or digits left visible by masking (`N`, 0-8)")
	fs.Var(&f.blockRules, "block-rule", "blocking rule `ID=PATTERN` or ID@TYPE,TYPE=PATTERN, RE2 (repeatable; replaces all rules)")
}

// privacyPolicy returns the privacy policy of s, creating what is unset.
func privacyPolicy(s *sealgatev1.AccountSettings) *sealgatev1.PrivacyPolicy {
	if s.PrivacyPolicy == nil {
		s.PrivacyPolicy = &sealgatev1.PrivacyPolicy{Redaction: &sealgatev1.Redaction{}, Masking: &sealgatev1.Masking{}}
	}
	return s.PrivacyPolicy
}

// buildRequest returns the UpdateAccountSettingsRequest for the account:
// its update_mask holds exactly the paths of the settings flags set on fs.
// It returns an error when no settings flag was set or an enum is unknown.
func (f *settingsFlags) buildRequest(account string, fs *flag.FlagSet) (*sealgatev1.UpdateAccountSettingsRequest, error) {
	s := &sealgatev1.AccountSettings{Name: settingsName(account)}
	mask := &fieldmaskpb.FieldMask{}
	for _, p := range settingsPaths {
		if !isSet(fs, p.flag) {
			continue
		}
		mask.Paths = append(mask.Paths, p.path)
		switch p.flag {
		case "home-region":
			s.HomeRegion = f.homeRegion
		case "localized":
			s.Localized = f.localized
		case "storage-region":
			s.StorageRegion = f.storageRegion
		case "queue-region":
			if len(f.queueRegions) > 0 {
				s.QueueStorageRegions = map[string]string(f.queueRegions)
			}
		case "key-mode":
			m, err := parseEnum(f.keyMode, "KEY_MODE_", sealgatev1.KeyMode_value)
			if err != nil {
				return nil, fmt.Errorf("--key-mode: %w", err)
			}
			keyPolicy(s).Mode = sealgatev1.KeyMode(m)
		case "customer-key-uri":
			keyPolicy(s).CustomerKeyUri = f.customerKeyURI
		case "retention":
			s.RetentionRules = f.retention
		case "deletion-mode":
			m, err := parseEnum(f.deletionMode, "DELETION_MODE_", sealgatev1.DeletionMode_value)
			if err != nil {
				return nil, fmt.Errorf("--deletion-mode: %w", err)
			}
			s.DeletionMode = sealgatev1.DeletionMode(m)
		case "redact":
			privacyPolicy(s).Redaction.Enabled = f.redact
		case "redact-types", "mask-types":
			v := map[string]string{"redact-types": f.redactTypes, "mask-types": f.maskTypes}[p.flag]
			ts, err := entityTypes(v)
			if err != nil {
				return nil, fmt.Errorf("--%s: %w", p.flag, err)
			}
			if p.flag == "redact-types" {
				privacyPolicy(s).Redaction.EntityTypes = ts
			} else {
				privacyPolicy(s).Masking.EntityTypes = ts
			}
		case "mask":
			privacyPolicy(s).Masking.Enabled = f.mask
		case "mask-char":
			privacyPolicy(s).Masking.MaskingCharacter = f.maskChar
		case "mask-keep":
			k := int32(f.maskKeep)
			privacyPolicy(s).Masking.UnmaskedSuffixLength = &k
		case "block-rule":
			privacyPolicy(s).BlockingRules = f.blockRules
		}
	}
	if len(mask.Paths) == 0 {
		return nil, errors.New("no settings given; pass at least one of --home-region, --localized, " +
			"--storage-region, --queue-region, --key-mode, --customer-key-uri, --retention, --deletion-mode, " +
			"--redact, --redact-types, --mask, --mask-types, --mask-char, --mask-keep, --block-rule")
	}
	return &sealgatev1.UpdateAccountSettingsRequest{Settings: s, UpdateMask: mask}, nil
}

// keyPolicy returns the key policy of s, creating it when unset.
func keyPolicy(s *sealgatev1.AccountSettings) *sealgatev1.KeyPolicy {
	if s.KeyPolicy == nil {
		s.KeyPolicy = &sealgatev1.KeyPolicy{}
	}
	return s.KeyPolicy
}

// settingsName returns the resource name of an account's settings.
func settingsName(account string) string { return "accounts/" + account + "/settings" }

// runSettings implements `sealctl settings get` and `sealctl settings set`;
// both print the account's settings as indented protojson.
func runSettings(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("settings", "want a subcommand: get or set")
	}
	var (
		cmd = "settings " + args[0]
		f   settingsFlags
		fs  *flag.FlagSet
		g   *globalFlags
	)
	switch args[0] {
	case "get":
		fs, g = a.newFlagSet(cmd, "settings get")
	case "set":
		fs, g = a.newFlagSet(cmd, "settings set [--home-region R] [--localized=true|false] [--storage-region R] "+
			"[--queue-region Q=R ...] [--key-mode M] [--customer-key-uri U] [--retention CATEGORY=DAYS ...] [--deletion-mode SOFT|HARD] "+
			"[--redact=true|false] [--redact-types T,T] [--mask=true|false] [--mask-types T,T] [--mask-char C] [--mask-keep N] [--block-rule ID=PATTERN ...]")
		f.register(fs)
	case "test-rule":
		return runTestRule(ctx, a, args[1:])
	case "-h", "-help", "--help":
		fmt.Fprint(a.stdout, "usage: sealctl settings get | sealctl settings set [flags] | sealctl settings test-rule --rule ID=PATTERN --sample TEXT\n")
		return nil
	default:
		return usagef("settings", "unknown subcommand %q: want get, set or test-rule", args[0])
	}
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usagef(cmd, "unexpected arguments %q", pos)
	}
	var req *sealgatev1.UpdateAccountSettingsRequest
	if args[0] == "set" {
		// Check the flags before looking for a token; the name comes later.
		if req, err = f.buildRequest("", fs); err != nil {
			return usagef(cmd, "%v", err)
		}
	}
	c, account, err := g.connectAccount(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	callCtx, cancel := c.unary(ctx)
	defer cancel()
	var s *sealgatev1.AccountSettings
	if req == nil {
		s, err = c.accounts.GetAccountSettings(callCtx, &sealgatev1.GetAccountSettingsRequest{Name: settingsName(account)})
	} else {
		req.Settings.Name = settingsName(account)
		s, err = c.accounts.UpdateAccountSettings(callCtx, req)
	}
	if err != nil {
		return err
	}
	return printProto(a.stdout, s)
}

// runTestRule implements `sealctl settings test-rule`: the gateway checks
// a blocking rule as it would when saved and tries it on a sample.
func runTestRule(ctx context.Context, a *app, args []string) error {
	const cmd = "settings test-rule"
	fs, g := a.newFlagSet(cmd, "settings test-rule --rule ID=PATTERN --sample TEXT")
	rule := fs.String("rule", "", "the rule, `ID=PATTERN` or ID@TYPE,TYPE=PATTERN")
	sample := fs.String("sample", "", "a sample message (`TEXT`)")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 || *rule == "" {
		return usagef(cmd, "want --rule ID=PATTERN and --sample TEXT")
	}
	r, err := parseRule(*rule)
	if err != nil {
		return usagef(cmd, "--rule: %v", err)
	}
	c, account, err := g.connectAccount(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	callCtx, cancel := c.unary(ctx)
	defer cancel()
	resp, err := c.accounts.TestBlockingRule(callCtx, &sealgatev1.TestBlockingRuleRequest{Name: settingsName(account), Rule: r, Sample: *sample})
	if err != nil {
		return err
	}
	if resp.GetMatched() {
		fmt.Fprintf(a.stdout, "rule %s matches: the message would be blocked\n", r.GetId())
	} else {
		fmt.Fprintf(a.stdout, "rule %s does not match\n", r.GetId())
	}
	return nil
}
