package ec2test

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// IAM: the roles and instance profiles an instance is launched with. The
// fake keeps the policies as given; it does not evaluate them.

type role struct {
	name, id, trust string
	tags            map[string]string
	policies        map[string]string
	created         time.Time
}

type profile struct {
	name, id string
	roles    []string
	created  time.Time
}

var iamActions = map[string]handler{
	"CreateRole":                    (*Server).createRole,
	"GetRole":                       (*Server).getRole,
	"DeleteRole":                    (*Server).deleteRole,
	"PutRolePolicy":                 (*Server).putRolePolicy,
	"GetRolePolicy":                 (*Server).getRolePolicy,
	"DeleteRolePolicy":              (*Server).deleteRolePolicy,
	"CreateInstanceProfile":         (*Server).createInstanceProfile,
	"GetInstanceProfile":            (*Server).getInstanceProfile,
	"DeleteInstanceProfile":         (*Server).deleteInstanceProfile,
	"AddRoleToInstanceProfile":      (*Server).addRoleToInstanceProfile,
	"RemoveRoleFromInstanceProfile": (*Server).removeRoleFromInstanceProfile,
}

func noSuchEntity(format string, args ...any) *apiError {
	e := apiErr("NoSuchEntity", format, args...)
	e.status = http.StatusNotFound
	return e
}

func conflict(code, format string, args ...any) *apiError {
	e := apiErr(code, format, args...)
	e.status = http.StatusConflict
	return e
}

type iamMeta struct {
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type xmlRole struct {
	Path                     string   `xml:"Path"`
	RoleName                 string   `xml:"RoleName"`
	RoleID                   string   `xml:"RoleId"`
	Arn                      string   `xml:"Arn"`
	CreateDate               string   `xml:"CreateDate"`
	AssumeRolePolicyDocument string   `xml:"AssumeRolePolicyDocument"`
	Tags                     []iamTag `xml:"Tags>member"`
}

type iamTag struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func (s *Server) roleXML(r *role) xmlRole {
	x := xmlRole{Path: "/", RoleName: r.name, RoleID: r.id, Arn: "arn:aws:iam::" + s.Account + ":role/" + r.name,
		CreateDate: timestamp(r.created), AssumeRolePolicyDocument: url.QueryEscape(r.trust)}
	keys := make([]string, 0, len(r.tags))
	for k := range r.tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.Tags = append(x.Tags, iamTag{k, r.tags[k]})
	}
	return x
}

// iamName checks a role's (max 64) or instance profile's (max 128) name
// as IAM does: 1 to max of the characters [\w+=,.@-].
func iamName(param, name string, max int) error {
	if name == "" {
		return apiErr("ValidationError", "The request must contain the parameter %s", param)
	}
	if len(name) > max {
		return apiErr("ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", name, param, max)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_+=,.@-", c)) {
			return apiErr("ValidationError", "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+", name, param)
		}
	}
	return nil
}

func (s *Server) createRole(r *request) (any, error) {
	name := r.form.Get("RoleName")
	if err := iamName("roleName", name, 64); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.roles[name] != nil {
		return nil, conflict("EntityAlreadyExists", "Role with name %s already exists.", name)
	}
	tags := map[string]string{}
	for i := 1; ; i++ {
		k := r.form.Get("Tags.member." + itoa(i) + ".Key")
		if k == "" {
			break
		}
		tags[k] = r.form.Get("Tags.member." + itoa(i) + ".Value")
	}
	ro := &role{name: name, id: "AROA" + strings.ToUpper(newID("")[1:17]), trust: r.form.Get("AssumeRolePolicyDocument"),
		tags: tags, policies: map[string]string{}, created: time.Now()}
	s.roles[name] = ro
	return &struct {
		Role xmlRole `xml:"CreateRoleResult>Role"`
		iamMeta
	}{s.roleXML(ro), iamMeta{r.id}}, nil
}

func (s *Server) getRole(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ro := s.roles[r.form.Get("RoleName")]
	if ro == nil {
		return nil, noSuchEntity("The role with name %s cannot be found.", r.form.Get("RoleName"))
	}
	return &struct {
		Role xmlRole `xml:"GetRoleResult>Role"`
		iamMeta
	}{s.roleXML(ro), iamMeta{r.id}}, nil
}

func (s *Server) deleteRole(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := r.form.Get("RoleName")
	ro := s.roles[name]
	if ro == nil {
		return nil, noSuchEntity("The role with name %s cannot be found.", name)
	}
	if len(ro.policies) > 0 {
		return nil, conflict("DeleteConflict", "Cannot delete entity, must delete policies first.")
	}
	for _, p := range s.profiles {
		for _, n := range p.roles {
			if n == name {
				return nil, conflict("DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.")
			}
		}
	}
	delete(s.roles, name)
	return &iamMeta{r.id}, nil
}

func (s *Server) putRolePolicy(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ro := s.roles[r.form.Get("RoleName")]
	if ro == nil {
		return nil, noSuchEntity("The role with name %s cannot be found.", r.form.Get("RoleName"))
	}
	name, doc := r.form.Get("PolicyName"), r.form.Get("PolicyDocument")
	if name == "" || doc == "" {
		return nil, apiErr("ValidationError", "PolicyName and PolicyDocument are required")
	}
	ro.policies[name] = doc
	return &iamMeta{r.id}, nil
}

func (s *Server) getRolePolicy(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ro := s.roles[r.form.Get("RoleName")]
	name := r.form.Get("PolicyName")
	if ro == nil || ro.policies[name] == "" {
		return nil, noSuchEntity("The role policy with name %s cannot be found.", name)
	}
	return &struct {
		RoleName       string `xml:"GetRolePolicyResult>RoleName"`
		PolicyName     string `xml:"GetRolePolicyResult>PolicyName"`
		PolicyDocument string `xml:"GetRolePolicyResult>PolicyDocument"`
		iamMeta
	}{ro.name, name, url.QueryEscape(ro.policies[name]), iamMeta{r.id}}, nil
}

func (s *Server) deleteRolePolicy(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ro := s.roles[r.form.Get("RoleName")]
	name := r.form.Get("PolicyName")
	if ro == nil || ro.policies[name] == "" {
		return nil, noSuchEntity("The role policy with name %s cannot be found.", name)
	}
	delete(ro.policies, name)
	return &iamMeta{r.id}, nil
}

type xmlProfile struct {
	Path                string    `xml:"Path"`
	InstanceProfileName string    `xml:"InstanceProfileName"`
	InstanceProfileID   string    `xml:"InstanceProfileId"`
	Arn                 string    `xml:"Arn"`
	CreateDate          string    `xml:"CreateDate"`
	Roles               []xmlRole `xml:"Roles>member"`
}

func (s *Server) profileXML(p *profile) xmlProfile {
	x := xmlProfile{Path: "/", InstanceProfileName: p.name, InstanceProfileID: p.id,
		Arn: "arn:aws:iam::" + s.Account + ":instance-profile/" + p.name, CreateDate: timestamp(p.created), Roles: []xmlRole{}}
	for _, n := range p.roles {
		if ro := s.roles[n]; ro != nil {
			x.Roles = append(x.Roles, s.roleXML(ro))
		}
	}
	return x
}

func (s *Server) createInstanceProfile(r *request) (any, error) {
	name := r.form.Get("InstanceProfileName")
	if err := iamName("instanceProfileName", name, 128); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.profiles[name] != nil {
		return nil, conflict("EntityAlreadyExists", "Instance Profile %s already exists.", name)
	}
	p := &profile{name: name, id: "AIPA" + strings.ToUpper(newID("")[1:17]), created: time.Now()}
	s.profiles[name] = p
	return &struct {
		Profile xmlProfile `xml:"CreateInstanceProfileResult>InstanceProfile"`
		iamMeta
	}{s.profileXML(p), iamMeta{r.id}}, nil
}

func (s *Server) getInstanceProfile(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.profiles[r.form.Get("InstanceProfileName")]
	if p == nil {
		return nil, noSuchEntity("Instance Profile %s cannot be found.", r.form.Get("InstanceProfileName"))
	}
	return &struct {
		Profile xmlProfile `xml:"GetInstanceProfileResult>InstanceProfile"`
		iamMeta
	}{s.profileXML(p), iamMeta{r.id}}, nil
}

func (s *Server) deleteInstanceProfile(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := r.form.Get("InstanceProfileName")
	p := s.profiles[name]
	if p == nil {
		return nil, noSuchEntity("Instance Profile %s cannot be found.", name)
	}
	if len(p.roles) > 0 {
		return nil, conflict("DeleteConflict", "Cannot delete entity, must remove roles from instance profile first.")
	}
	delete(s.profiles, name)
	return &iamMeta{r.id}, nil
}

func (s *Server) addRoleToInstanceProfile(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.profiles[r.form.Get("InstanceProfileName")]
	if p == nil {
		return nil, noSuchEntity("Instance Profile %s cannot be found.", r.form.Get("InstanceProfileName"))
	}
	name := r.form.Get("RoleName")
	if s.roles[name] == nil {
		return nil, noSuchEntity("The role with name %s cannot be found.", name)
	}
	if len(p.roles) > 0 {
		return nil, conflict("LimitExceeded", "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1")
	}
	p.roles = append(p.roles, name)
	return &iamMeta{r.id}, nil
}

func (s *Server) removeRoleFromInstanceProfile(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.profiles[r.form.Get("InstanceProfileName")]
	if p == nil {
		return nil, noSuchEntity("Instance Profile %s cannot be found.", r.form.Get("InstanceProfileName"))
	}
	name := r.form.Get("RoleName")
	for i, n := range p.roles {
		if n == name {
			p.roles = append(p.roles[:i], p.roles[i+1:]...)
			return &iamMeta{r.id}, nil
		}
	}
	return nil, noSuchEntity("The role with name %s cannot be found in the instance profile.", name)
}

// RolePolicy returns a role's inline policy document ("" if none), for tests.
func (s *Server) RolePolicy(roleName, policyName string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ro := s.roles[roleName]; ro != nil {
		return ro.policies[policyName]
	}
	return ""
}

func itoa(i int) string { return strconv.Itoa(i) }
