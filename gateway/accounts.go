package gateway

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sealgate/sealgate/gateway/audit"
	"github.com/sealgate/sealgate/gateway/auth"
	"github.com/sealgate/sealgate/gateway/limits"
	"github.com/sealgate/sealgate/gateway/policy"
	sealgatev1 "github.com/sealgate/sealgate/proto/sealgate/v1"
)

// resolveSettingsName parses a settings name and checks that the caller's
// account owns it; another account answers exactly like a missing one.
func (g *Gateway) resolveSettingsName(ctx context.Context, p *auth.Principal, name string) (string, error) {
	account, ok := policy.ParseSettingsName(name)
	if !ok {
		return "", invalidArgument("name", "want accounts/{account}/settings", ReasonInvalidArgument)
	}
	if account != p.Account {
		g.otherAccount(ctx, p, name)
		return "", newStatus(codes.NotFound, "account not found", ReasonAccountNotFound, nil)
	}
	return account, nil
}

// GetAccountSettings returns the caller's account settings.
func (s *accountService) GetAccountSettings(ctx context.Context, req *sealgatev1.GetAccountSettingsRequest) (*sealgatev1.AccountSettings, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin, auth.RoleAuditor)
	if err != nil {
		return nil, err
	}
	account, err := g.resolveSettingsName(ctx, p, req.GetName())
	if err != nil {
		return nil, err
	}
	settings, err := g.cfg.Settings.Get(ctx, account)
	if err != nil {
		return nil, g.toStatus(ctx, "get settings", err)
	}
	settings.Name = policy.SettingsName(account)
	return settings, nil
}

// UpdateAccountSettings applies the masked fields of req.settings to the
// caller's account, creating the account when it has no settings yet. The
// result is validated as a whole before anything is written; regions must be
// in the topology. New settings apply to new uploads only.
func (s *accountService) UpdateAccountSettings(ctx context.Context, req *sealgatev1.UpdateAccountSettingsRequest) (*sealgatev1.AccountSettings, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	if req.GetSettings() == nil {
		return nil, invalidArgument("settings", "required", ReasonInvalidArgument)
	}
	account, err := g.resolveSettingsName(ctx, p, req.GetSettings().GetName())
	if err != nil {
		return nil, err
	}
	created := false
	var paths []string
	updated, err := g.cfg.Settings.Update(ctx, account, req.GetSettings().GetEtag(), func(current *sealgatev1.AccountSettings) (*sealgatev1.AccountSettings, error) {
		created = current == nil
		if created {
			current = &sealgatev1.AccountSettings{}
		}
		next := proto.Clone(current).(*sealgatev1.AccountSettings)
		paths = req.GetUpdateMask().GetPaths()
		if err := policy.ApplyMask(next, req.GetSettings(), paths); err != nil {
			return nil, err
		}
		if err := policy.Validate(next, g.cfg.Topology, g.cfg.CustomerKeySchemes); err != nil {
			return nil, err
		}
		if err := policy.CheckTopology(next, g.cfg.Topology); err != nil {
			return nil, err
		}
		if !proto.Equal(current.GetKeyPolicy(), next.GetKeyPolicy()) {
			if err := g.checkNewKeys(ctx, account, next.GetKeyPolicy()); err != nil {
				return nil, err
			}
		}
		next.Name = policy.SettingsName(account)
		next.UpdateTime = timestamppb.New(g.now())
		return next, nil
	})
	if errors.Is(err, policy.ErrStale) {
		return nil, newStatus(codes.Aborted, "the settings changed since they were read: read them again and retry", ReasonEtagMismatch, nil)
	}
	if err != nil {
		return nil, g.toStatus(ctx, "update settings", err)
	}
	g.forgetSettings(account) // this gateway's reads see the change at once
	g.log.InfoContext(ctx, "account settings updated", "account", account, "actor", p.Subject,
		"created", created, "paths", paths)
	g.audit.Record(audit.Event{Kind: audit.KindSettingsChange, Account: account, Actor: p.Subject,
		Outcome: audit.OutcomeOK, KeyURIs: keyURIsOf(g, updated), Detail: strings.Join(paths, ",")})
	return updated, nil
}

func keyURIsOf(g *Gateway, s *sealgatev1.AccountSettings) []string {
	_, uris := g.keyURIsFor(s.GetKeyPolicy())
	return uris
}

// maxRuleSample bounds the sample message of TestBlockingRule.
const maxRuleSample = 64 << 10

// TestBlockingRule validates a blocking rule exactly as UpdateAccountSettings
// would and tries it on a sample message, so an admin can check a rule
// before saving it. Nothing is stored and the sample is not logged.
func (s *accountService) TestBlockingRule(ctx context.Context, req *sealgatev1.TestBlockingRuleRequest) (*sealgatev1.TestBlockingRuleResponse, error) {
	g := s.g
	p, err := g.require(ctx, auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	account, err := g.resolveSettingsName(ctx, p, req.GetName())
	if err != nil {
		return nil, err
	}
	if req.GetRule() == nil {
		return nil, invalidArgument("rule", "required", ReasonInvalidArgument)
	}
	if len(req.GetSample()) > maxRuleSample {
		return nil, invalidArgument("sample", "at most 64 KiB", ReasonInvalidArgument)
	}
	re, insts, vs := policy.CompileRule("rule", req.GetRule())
	if len(vs) > 0 {
		return nil, validationStatus(&policy.ValidationError{Violations: vs})
	}
	// The account's uploads and its rule tests share one scan share.
	var matched bool
	cost := limits.ScanCost(len(req.GetSample()), insts)
	if err := g.limits.Scan(ctx, account, cost, func() { matched = re.MatchString(req.GetSample()) }); err != nil {
		return nil, g.toStatus(ctx, "test rule", err)
	}
	return &sealgatev1.TestBlockingRuleResponse{Matched: matched}, nil
}
