package ec2test

import (
	"encoding/json"
	"path"
	"strings"
)

// PolicyAllows evaluates an IAM policy document the way IAM does for the
// parts JeCloud's policies use: Allow and Deny statements, Action and
// Resource as a string or a list, * and ? wildcards, and policy variables
// (${aws:userid}) taken from vars, and conditions with the StringEquals
// and StringLike operators on keys taken from vars too (s3:prefix for a
// ListBucket: absent, the condition fails, as in IAM); a statement with
// another operator never matches. A request is allowed when an Allow
// matches and no Deny does.
func PolicyAllows(policy string, vars map[string]string, action, resource string) bool {
	var doc struct {
		Statement []struct {
			Effect    string
			Action    any
			Resource  any
			Condition any
		}
	}
	if json.Unmarshal([]byte(policy), &doc) != nil {
		return false
	}
	allowed := false
	for _, st := range doc.Statement {
		if !conditionsHold(st.Condition, vars) || !anyMatch(st.Action, action, nil, true) || !anyMatch(st.Resource, resource, vars, false) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		}
	}
	return allowed
}

// conditionsHold evaluates a statement's Condition block (nil: none).
func conditionsHold(c any, vars map[string]string) bool {
	if c == nil {
		return true
	}
	ops, ok := c.(map[string]any)
	if !ok {
		return false
	}
	for op, keys := range ops {
		km, ok := keys.(map[string]any)
		if !ok || (op != "StringLike" && op != "StringEquals") {
			return false
		}
		for k, pats := range km {
			v, ok := vars[k]
			if !ok {
				return false
			}
			if op == "StringEquals" {
				if !anyEqual(pats, v) {
					return false
				}
			} else if !anyMatch(pats, v, nil, false) {
				return false
			}
		}
	}
	return true
}

func anyEqual(v any, s string) bool {
	switch x := v.(type) {
	case string:
		return x == s
	case []any:
		for _, p := range x {
			if p == s {
				return true
			}
		}
	}
	return false
}

func anyMatch(v any, s string, vars map[string]string, fold bool) bool {
	var pats []string
	switch x := v.(type) {
	case string:
		pats = []string{x}
	case []any:
		for _, p := range x {
			if ps, ok := p.(string); ok {
				pats = append(pats, ps)
			}
		}
	}
	for _, p := range pats {
		for k, val := range vars {
			p = strings.ReplaceAll(p, "${"+k+"}", val)
		}
		if strings.Contains(p, "${") {
			continue // a variable the request does not have matches nothing
		}
		if fold {
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if wildcard(p, s) {
			return true
		}
	}
	return false
}

// wildcard matches IAM's * and ? (which, unlike path.Match's, cross '/').
func wildcard(p, s string) bool {
	ep := strings.NewReplacer("/", "\x00", "[", "\\[", "\\", "\\\\").Replace(p)
	es := strings.ReplaceAll(s, "/", "\x00")
	ok, _ := path.Match(ep, es)
	return ok
}
