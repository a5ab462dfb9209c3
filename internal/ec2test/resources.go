package ec2test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Images.

// image is a public AMI.
type image struct {
	id, name, arch, owner, created string
}

// debianOwner is the account of Debian's official images.
const debianOwner = "136693071363"

// debianImages are the images the fake knows.
func debianImages() []*image {
	return []*image{
		{id: "ami-0debian12amd64", name: "debian-12-amd64-20261101-1234", arch: "x86_64", owner: debianOwner, created: "2026-11-01T12:34:56.000Z"},
		{id: "ami-0debian12arm64", name: "debian-12-arm64-20261101-1234", arch: "arm64", owner: debianOwner, created: "2026-11-01T12:34:56.000Z"},
	}
}

// image returns the image id, or nil.
func (s *Server) image(id string) *image {
	for _, img := range s.images {
		if img.id == id {
			return img
		}
	}
	return nil
}

// describeImages is DescribeImages, with Owner.N (account IDs and self),
// ImageId.N and filters, without pagination.
func (s *Server) describeImages(r *request) (any, error) {
	fs, err := filters(r.form, "architecture", "description", "image-id", "image-type", "is-public", "name",
		"owner-id", "root-device-type", "state", "virtualization-type")
	if err != nil {
		return nil, err
	}
	ids := list(r.form, "ImageId")
	for _, id := range ids {
		if !strings.HasPrefix(id, "ami-") {
			return nil, apiErr("InvalidAMIID.Malformed", "Invalid id: %q (expecting \"ami-...\")", id)
		}
		if s.image(id) == nil {
			return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", id)
		}
	}
	owners := list(r.form, "Owner")
	for i, o := range owners {
		if o == "self" {
			owners[i] = s.Account
		}
	}
	type xmlImage struct {
		ImageID            string `xml:"imageId"`
		ImageLocation      string `xml:"imageLocation"`
		State              string `xml:"imageState"`
		OwnerID            string `xml:"imageOwnerId"`
		CreationDate       string `xml:"creationDate"`
		IsPublic           bool   `xml:"isPublic"`
		Architecture       string `xml:"architecture"`
		ImageType          string `xml:"imageType"`
		Name               string `xml:"name"`
		Description        string `xml:"description"`
		RootDeviceType     string `xml:"rootDeviceType"`
		RootDeviceName     string `xml:"rootDeviceName"`
		VirtualizationType string `xml:"virtualizationType"`
		Hypervisor         string `xml:"hypervisor"`
		EnaSupport         bool   `xml:"enaSupport"`
		PlatformDetails    string `xml:"platformDetails"`
		UsageOperation     string `xml:"usageOperation"`
	}
	resp := &struct {
		RequestID string     `xml:"requestId"`
		Images    []xmlImage `xml:"imagesSet>item"`
	}{RequestID: r.id}
	for _, img := range s.images {
		x := xmlImage{
			ImageID:            img.id,
			ImageLocation:      img.owner + "/" + img.name,
			State:              "available",
			OwnerID:            img.owner,
			CreationDate:       img.created,
			IsPublic:           true,
			Architecture:       img.arch,
			ImageType:          "machine",
			Name:               img.name,
			Description:        "Debian 12 (" + strings.TrimPrefix(img.name, "debian-12-"+archName(img.arch)+"-") + ")",
			RootDeviceType:     "ebs",
			RootDeviceName:     "/dev/xvda",
			VirtualizationType: "hvm",
			Hypervisor:         "xen",
			EnaSupport:         true,
			PlatformDetails:    "Linux/UNIX",
			UsageOperation:     "RunInstances",
		}
		fields := map[string][]string{
			"architecture":        {x.Architecture},
			"description":         {x.Description},
			"image-id":            {x.ImageID},
			"image-type":          {x.ImageType},
			"is-public":           {"true"},
			"name":                {x.Name},
			"owner-id":            {x.OwnerID},
			"root-device-type":    {x.RootDeviceType},
			"state":               {x.State},
			"virtualization-type": {x.VirtualizationType},
		}
		if (len(ids) > 0 && !slices.Contains(ids, img.id)) ||
			(len(owners) > 0 && !slices.Contains(owners, img.owner)) ||
			!match(fs, fields, nil) {
			continue
		}
		resp.Images = append(resp.Images, x)
	}
	return resp, nil
}

// archName is Debian's name of an architecture.
func archName(arch string) string {
	if arch == "x86_64" {
		return "amd64"
	}
	return arch
}

// Key pairs.

// keyPair is an imported key pair.
type keyPair struct {
	id, name, keyType, fingerprint string
	publicKey                      string // as imported, trimmed
	tags                           map[string]string
	created                        time.Time
}

func (s *Server) keyByName(name string) *keyPair {
	for _, k := range s.keys {
		if k.name == name {
			return k
		}
	}
	return nil
}

func (s *Server) keyByID(id string) *keyPair {
	for _, k := range s.keys {
		if k.id == id {
			return k
		}
	}
	return nil
}

// importKeyPair is ImportKeyPair of an RSA or ED25519 OpenSSH public key.
func (s *Server) importKeyPair(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.form
	name := f.Get("KeyName")
	switch {
	case name == "":
		return nil, apiErr("MissingParameter", "The request must contain the parameter KeyName")
	case len(name) > 255:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter KeyName is invalid. Length exceeds maximum of 255.", name)
	case f.Get("PublicKeyMaterial") == "":
		return nil, apiErr("MissingParameter", "The request must contain the parameter PublicKeyMaterial")
	}
	raw, err := base64.StdEncoding.DecodeString(f.Get("PublicKeyMaterial"))
	if err != nil {
		return nil, apiErr("InvalidKey.Format", "Key is not in valid OpenSSH public key format")
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(raw)
	if err != nil {
		return nil, apiErr("InvalidKey.Format", "Key is not in valid OpenSSH public key format")
	}
	k := &keyPair{id: newID("key"), name: name, publicKey: strings.TrimSpace(string(raw)), created: time.Now()}
	switch pub.Type() {
	case ssh.KeyAlgoRSA:
		// EC2's fingerprint of imported RSA keys is RFC 4716's MD5.
		k.keyType, k.fingerprint = "rsa", ssh.FingerprintLegacyMD5(pub)
	case ssh.KeyAlgoED25519:
		sum := sha256.Sum256(pub.Marshal())
		k.keyType, k.fingerprint = "ed25519", base64.StdEncoding.EncodeToString(sum[:])
	default:
		return nil, apiErr("InvalidKey.Format", "Key is not in valid OpenSSH public key format")
	}
	if s.keyByName(name) != nil {
		return nil, apiErr("InvalidKeyPair.Duplicate", "The keypair '%s' already exists.", name)
	}
	if k.tags, err = tagSpecs(f, "key-pair"); err != nil {
		return nil, err
	}
	s.keys = append(s.keys, k)
	return &struct {
		RequestID   string   `xml:"requestId"`
		KeyName     string   `xml:"keyName"`
		Fingerprint string   `xml:"keyFingerprint"`
		KeyPairID   string   `xml:"keyPairId"`
		Tags        []xmlTag `xml:"tagSet>item"`
	}{r.id, k.name, k.fingerprint, k.id, tagSet(k.tags)}, nil
}

// describeKeyPairs is DescribeKeyPairs, with KeyName.N, KeyPairId.N,
// filters and IncludePublicKey.
func (s *Server) describeKeyPairs(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, err := filters(r.form, "fingerprint", "key-name", "key-pair-id", "key-type")
	if err != nil {
		return nil, err
	}
	names, ids := list(r.form, "KeyName"), list(r.form, "KeyPairId")
	for _, name := range names {
		if s.keyByName(name) == nil {
			return nil, apiErr("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", name)
		}
	}
	for _, id := range ids {
		if s.keyByID(id) == nil {
			return nil, apiErr("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", id)
		}
	}
	type xmlKeyPair struct {
		KeyPairID   string   `xml:"keyPairId"`
		KeyType     string   `xml:"keyType"`
		Tags        []xmlTag `xml:"tagSet>item"`
		KeyName     string   `xml:"keyName"`
		Fingerprint string   `xml:"keyFingerprint"`
		PublicKey   string   `xml:"publicKey,omitempty"`
		CreateTime  string   `xml:"createTime"`
	}
	resp := &struct {
		RequestID string       `xml:"requestId"`
		Keys      []xmlKeyPair `xml:"keySet>item"`
	}{RequestID: r.id}
	includePublic := r.form.Get("IncludePublicKey") == "true"
	for _, k := range s.keys {
		fields := map[string][]string{
			"fingerprint": {k.fingerprint},
			"key-name":    {k.name},
			"key-pair-id": {k.id},
			"key-type":    {k.keyType},
		}
		if (len(names) > 0 || len(ids) > 0) && !slices.Contains(names, k.name) && !slices.Contains(ids, k.id) ||
			!match(fs, fields, k.tags) {
			continue
		}
		x := xmlKeyPair{k.id, k.keyType, tagSet(k.tags), k.name, k.fingerprint, "", timestamp(k.created)}
		if includePublic {
			x.PublicKey = k.publicKey
		}
		resp.Keys = append(resp.Keys, x)
	}
	return resp, nil
}

// deleteKeyPair is DeleteKeyPair by KeyName or KeyPairId; like EC2 it
// succeeds when there is no such key.
func (s *Server) deleteKeyPair(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	name, id := r.form.Get("KeyName"), r.form.Get("KeyPairId")
	if name == "" && id == "" {
		return nil, apiErr("MissingParameter", "The request must contain the parameter KeyName or KeyPairId")
	}
	resp := &struct {
		RequestID string `xml:"requestId"`
		Return    bool   `xml:"return"`
		KeyPairID string `xml:"keyPairId,omitempty"`
	}{RequestID: r.id, Return: true}
	s.keys = slices.DeleteFunc(s.keys, func(k *keyPair) bool {
		if (name != "" && k.name == name) || (id != "" && k.id == id) {
			resp.KeyPairID = k.id
			return true
		}
		return false
	})
	return resp, nil
}

// Security groups.

// securityGroup is a security group of the default VPC. Its egress is
// the default, everything.
type securityGroup struct {
	id, name, description string
	tags                  map[string]string
	rules                 []*rule // ingress
}

// rule is an ingress rule: traffic of a protocol (and port range) from a
// CIDR block or a security group.
type rule struct {
	id          string
	proto       string // tcp, udp, icmp, icmpv6, -1 (all) or a protocol number
	ports       bool   // whether from and to apply (tcp, udp, icmp, icmpv6)
	from, to    int
	cidr        string // IPv4 or IPv6 block; or
	group       string // the source group's ID
	description string
}

// key identifies what the rule allows.
func (r *rule) key() string {
	return fmt.Sprintf("%s|%d|%d|%s|%s", r.proto, r.from, r.to, r.cidr, r.group)
}

// defaultGroup is the default security group of the default VPC: all
// traffic between its members.
func defaultGroup() *securityGroup {
	g := &securityGroup{id: newID("sg"), name: "default", description: "default VPC security group", tags: map[string]string{}}
	g.rules = []*rule{{id: newID("sgr"), proto: "-1", from: -1, to: -1, group: g.id}}
	return g
}

func (s *Server) groupByID(id string) *securityGroup {
	for _, g := range s.groups {
		if g.id == id {
			return g
		}
	}
	return nil
}

func (s *Server) groupByName(name string) *securityGroup {
	for _, g := range s.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// lookupGroup returns the group GroupId, or else GroupName, of form.
func (s *Server) lookupGroup(f url.Values) (*securityGroup, error) {
	id, name := f.Get("GroupId"), f.Get("GroupName")
	switch {
	case id != "":
		if g := s.groupByID(id); g != nil {
			return g, nil
		}
		return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
	case name != "":
		if g := s.groupByName(name); g != nil {
			return g, nil
		}
		return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist in default VPC '%s'", name, defaultVPC)
	}
	return nil, apiErr("MissingParameter", "The request must contain the parameter groupName or groupId")
}

func (s *Server) groupARN(g *securityGroup) string {
	return "arn:aws:ec2:" + region + ":" + s.Account + ":security-group/" + g.id
}

// notGroupNameChar reports a character a VPC security group's name may not
// have (allowed: a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*).
func notGroupNameChar(c rune) bool {
	return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(" ._-:/()#,@[]+=&;{}!$*", c))
}

// createSecurityGroup is CreateSecurityGroup in the default VPC.
func (s *Server) createSecurityGroup(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.form
	name, desc := f.Get("GroupName"), f.Get("GroupDescription")
	switch {
	case name == "":
		return nil, apiErr("MissingParameter", "The request must contain the parameter GroupName")
	case desc == "":
		return nil, apiErr("MissingParameter", "The request must contain the parameter GroupDescription")
	case len(name) > 255:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter GroupName is invalid. Length exceeds maximum of 255.", name)
	case strings.HasPrefix(name, "sg-"):
		return nil, apiErr("InvalidParameterValue", "Group names may not be in the format sg-*.")
	case strings.IndexFunc(name, notGroupNameChar) >= 0:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter GroupName is invalid. Character sets beyond ASCII are not supported.", name)
	case strings.EqualFold(name, "default"):
		return nil, apiErr("InvalidParameterValue", "Cannot use reserved security group name: %s", name)
	case f.Get("VpcId") != "" && f.Get("VpcId") != defaultVPC:
		return nil, apiErr("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", f.Get("VpcId"))
	case s.groupByName(name) != nil:
		return nil, apiErr("InvalidGroup.Duplicate", "The security group '%s' already exists for VPC '%s'", name, defaultVPC)
	}
	tags, err := tagSpecs(f, "security-group")
	if err != nil {
		return nil, err
	}
	g := &securityGroup{id: newID("sg"), name: name, description: desc, tags: tags}
	s.groups = append(s.groups, g)
	return &struct {
		RequestID string   `xml:"requestId"`
		Return    bool     `xml:"return"`
		GroupID   string   `xml:"groupId"`
		Tags      []xmlTag `xml:"tagSet>item"`
		ARN       string   `xml:"securityGroupArn"`
	}{r.id, true, g.id, tagSet(g.tags), s.groupARN(g)}, nil
}

// deleteSecurityGroup is DeleteSecurityGroup by GroupId or GroupName.
func (s *Server) deleteSecurityGroup(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGroup(r.form)
	if err != nil {
		return nil, err
	}
	if g.name == "default" {
		return nil, apiErr("CannotDelete", "the specified group: %q name: \"default\" cannot be deleted by a user", g.id)
	}
	for _, inst := range s.instances {
		if inst.State != "terminated" && slices.Contains(inst.SecurityGroupIDs, g.id) {
			return nil, apiErr("DependencyViolation", "resource %s has a dependent object", g.id)
		}
	}
	for _, other := range s.groups {
		if other != g && slices.ContainsFunc(other.rules, func(r *rule) bool { return r.group == g.id }) {
			return nil, apiErr("DependencyViolation", "resource %s has a dependent object", g.id)
		}
	}
	s.groups = slices.DeleteFunc(s.groups, func(x *securityGroup) bool { return x == g })
	return &struct {
		RequestID string `xml:"requestId"`
		Return    bool   `xml:"return"`
		GroupID   string `xml:"groupId"`
	}{r.id, true, g.id}, nil
}

// authorizeSecurityGroupIngress is AuthorizeSecurityGroupIngress, with
// IpPermissions.N (IpRanges, Ipv6Ranges and Groups sources) or the older
// IpProtocol, FromPort, ToPort, CidrIp and SourceSecurityGroupName.
func (s *Server) authorizeSecurityGroupIngress(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGroup(r.form)
	if err != nil {
		return nil, err
	}
	var rules []*rule
	prefixes := members(r.form, "IpPermissions")
	for i := range prefixes {
		prefixes[i] += "."
	}
	if len(prefixes) == 0 {
		prefixes = []string{""} // the older parameters
	}
	for _, p := range prefixes {
		rs, err := s.permission(r.form, p)
		if err != nil {
			return nil, err
		}
		rules = append(rules, rs...)
	}
	seen := map[string]bool{}
	for _, x := range g.rules {
		seen[x.key()] = true
	}
	for _, x := range rules {
		if seen[x.key()] {
			return nil, apiErr("InvalidPermission.Duplicate", "the specified rule %q already exists", x.peer())
		}
		seen[x.key()] = true
	}
	g.rules = append(g.rules, rules...)

	type xmlRule struct {
		ID           string        `xml:"securityGroupRuleId"`
		GroupID      string        `xml:"groupId"`
		GroupOwnerID string        `xml:"groupOwnerId"`
		IsEgress     bool          `xml:"isEgress"`
		Protocol     string        `xml:"ipProtocol"`
		FromPort     int           `xml:"fromPort"`
		ToPort       int           `xml:"toPort"`
		CIDRv4       string        `xml:"cidrIpv4,omitempty"`
		CIDRv6       string        `xml:"cidrIpv6,omitempty"`
		Referenced   *xmlGroupPair `xml:"referencedGroupInfo"`
		Description  string        `xml:"description,omitempty"`
		ARN          string        `xml:"securityGroupRuleArn"`
	}
	resp := &struct {
		RequestID string    `xml:"requestId"`
		Return    bool      `xml:"return"`
		Rules     []xmlRule `xml:"securityGroupRuleSet>item"`
	}{RequestID: r.id, Return: true}
	for _, x := range rules {
		xr := xmlRule{ID: x.id, GroupID: g.id, GroupOwnerID: s.Account, Protocol: x.proto, FromPort: -1, ToPort: -1,
			Description: x.description, ARN: "arn:aws:ec2:" + region + ":" + s.Account + ":security-group-rule/" + x.id}
		if x.ports {
			xr.FromPort, xr.ToPort = x.from, x.to
		}
		switch {
		case x.group != "":
			xr.Referenced = &xmlGroupPair{UserID: s.Account, GroupID: x.group}
		case strings.Contains(x.cidr, ":"):
			xr.CIDRv6 = x.cidr
		default:
			xr.CIDRv4 = x.cidr
		}
		resp.Rules = append(resp.Rules, xr)
	}
	return resp, nil
}

// revokeSecurityGroupIngress is RevokeSecurityGroupIngress, with
// IpPermissions.N, the older parameters, or SecurityGroupRuleId.N. As in a
// default VPC, a rule that is not there is an InvalidPermission.NotFound
// error, and then nothing is revoked.
func (s *Server) revokeSecurityGroupIngress(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, err := s.lookupGroup(r.form)
	if err != nil {
		return nil, err
	}
	gone := map[*rule]bool{}
	if ids := list(r.form, "SecurityGroupRuleId"); len(ids) > 0 {
		for _, id := range ids {
			i := slices.IndexFunc(g.rules, func(x *rule) bool { return x.id == id })
			if i < 0 {
				return nil, apiErr("InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '%s' does not exist", id)
			}
			gone[g.rules[i]] = true
		}
	} else {
		prefixes := members(r.form, "IpPermissions")
		for i := range prefixes {
			prefixes[i] += "."
		}
		if len(prefixes) == 0 {
			prefixes = []string{""}
		}
		for _, p := range prefixes {
			rs, err := s.permission(r.form, p)
			if err != nil {
				return nil, err
			}
			for _, x := range rs {
				i := slices.IndexFunc(g.rules, func(y *rule) bool { return y.key() == x.key() })
				if i < 0 {
					return nil, apiErr("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
				}
				gone[g.rules[i]] = true
			}
		}
	}
	g.rules = slices.DeleteFunc(g.rules, func(x *rule) bool { return gone[x] })
	return &struct {
		RequestID string `xml:"requestId"`
		Return    bool   `xml:"return"`
	}{r.id, true}, nil
}

// permission returns the rules of the IP permission whose parameters
// start with p.
func (s *Server) permission(f url.Values, p string) ([]*rule, error) {
	base := rule{from: -1, to: -1}
	switch proto := strings.ToLower(f.Get(p + "IpProtocol")); proto {
	case "tcp", "6":
		base.proto, base.ports = "tcp", true
	case "udp", "17":
		base.proto, base.ports = "udp", true
	case "icmp", "1":
		base.proto, base.ports = "icmp", true
	case "icmpv6", "58":
		base.proto, base.ports = "icmpv6", true
	case "-1", "all":
		base.proto = "-1"
	default:
		if n, err := strconv.Atoi(proto); err != nil || n < 0 || n > 255 {
			return nil, apiErr("InvalidParameterValue", "Invalid value '%s' for IP protocol. Unknown protocol.", proto)
		}
		base.proto = proto
	}
	if base.ports {
		from, to := f.Get(p+"FromPort"), f.Get(p+"ToPort")
		tcpUDP := base.proto == "tcp" || base.proto == "udp"
		if tcpUDP && (from == "" || to == "") {
			return nil, apiErr("InvalidParameterValue", "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange")
		}
		var err1, err2 error
		if from != "" {
			base.from, err1 = strconv.Atoi(from)
		}
		if to != "" {
			base.to, err2 = strconv.Atoi(to)
		}
		switch {
		case err1 != nil || err2 != nil:
			return nil, apiErr("InvalidParameterValue", "Invalid value for portRange: %s-%s", from, to)
		case tcpUDP && (base.from < 0 || base.to > 65535 || base.from > base.to):
			return nil, apiErr("InvalidParameterValue", "Invalid TCP/UDP port range %d-%d", base.from, base.to)
		}
	}
	var rules []*rule
	add := func(cidr, group, desc string) {
		x := base
		x.id, x.cidr, x.group, x.description = newID("sgr"), cidr, group, desc
		rules = append(rules, &x)
	}
	cidr := func(v string, v6 bool) (string, error) {
		pfx, err := netip.ParsePrefix(v)
		if err != nil || pfx.Addr().Is4() == v6 {
			return "", apiErr("InvalidParameterValue", "CIDR block %s is malformed", v)
		}
		return pfx.String(), nil
	}
	var sources [][3]string // CIDR IP, CIDR IPv6 or group ID; description
	for _, m := range members(f, p+"IpRanges") {
		sources = append(sources, [3]string{f.Get(m + ".CidrIp"), "", f.Get(m + ".Description")})
	}
	for _, m := range members(f, p+"Ipv6Ranges") {
		sources = append(sources, [3]string{"", f.Get(m + ".CidrIpv6"), f.Get(m + ".Description")})
	}
	for _, m := range members(f, p+"Groups") {
		id, name := f.Get(m+".GroupId"), f.Get(m+".GroupName")
		g, err := s.lookupGroup(url.Values{"GroupId": {id}, "GroupName": {name}})
		if err != nil {
			return nil, err
		}
		add("", g.id, f.Get(m+".Description"))
	}
	if p == "" {
		if v := f.Get("CidrIp"); v != "" {
			sources = append(sources, [3]string{v, "", ""})
		}
		if name := f.Get("SourceSecurityGroupName"); name != "" {
			g, err := s.lookupGroup(url.Values{"GroupName": {name}})
			if err != nil {
				return nil, err
			}
			add("", g.id, "")
		}
	}
	for _, src := range sources {
		v, v6 := src[0], false
		if v == "" {
			v, v6 = src[1], true
		}
		c, err := cidr(v, v6)
		if err != nil {
			return nil, err
		}
		add(c, "", src[2])
	}
	if len(rules) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter ipRanges, ipv6Ranges or groups")
	}
	return rules, nil
}

// peer describes the rule the way EC2's InvalidPermission.Duplicate does.
func (r *rule) peer() string {
	src := r.cidr
	if r.group != "" {
		src = r.group
	}
	proto := strings.ToUpper(r.proto)
	if r.proto == "-1" {
		proto = "ALL"
	}
	if r.ports {
		return fmt.Sprintf("peer: %s, %s, from port: %d, to port: %d, ALLOW", src, proto, r.from, r.to)
	}
	return fmt.Sprintf("peer: %s, %s, ALLOW", src, proto)
}

// describeSecurityGroups is DescribeSecurityGroups, with GroupName.N,
// GroupId.N and filters, without pagination.
func (s *Server) describeSecurityGroups(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, err := filters(r.form, "description", "group-id", "group-name", "owner-id", "vpc-id",
		"ip-permission.cidr", "ip-permission.ipv6-cidr", "ip-permission.from-port", "ip-permission.to-port",
		"ip-permission.protocol", "ip-permission.group-id")
	if err != nil {
		return nil, err
	}
	var want []*securityGroup // nil: all
	for _, id := range list(r.form, "GroupId") {
		if !strings.HasPrefix(id, "sg-") {
			return nil, apiErr("InvalidGroupId.Malformed", "Invalid id: %q (expecting \"sg-...\")", id)
		}
		g, err := s.lookupGroup(url.Values{"GroupId": {id}})
		if err != nil {
			return nil, err
		}
		want = append(want, g)
	}
	for _, name := range list(r.form, "GroupName") {
		g, err := s.lookupGroup(url.Values{"GroupName": {name}})
		if err != nil {
			return nil, err
		}
		want = append(want, g)
	}
	resp := &struct {
		RequestID string             `xml:"requestId"`
		Groups    []xmlSecurityGroup `xml:"securityGroupInfo>item"`
	}{RequestID: r.id}
	for _, g := range s.groups {
		if want != nil && !slices.Contains(want, g) || !match(fs, groupFields(g, s.Account), g.tags) {
			continue
		}
		resp.Groups = append(resp.Groups, s.groupXML(g))
	}
	return resp, nil
}

// groupFields are the values DescribeSecurityGroups filters on.
func groupFields(g *securityGroup, account string) map[string][]string {
	f := map[string][]string{
		"description": {g.description},
		"group-id":    {g.id},
		"group-name":  {g.name},
		"owner-id":    {account},
		"vpc-id":      {defaultVPC},
	}
	for _, x := range g.rules {
		f["ip-permission.protocol"] = append(f["ip-permission.protocol"], x.proto)
		if x.ports {
			f["ip-permission.from-port"] = append(f["ip-permission.from-port"], strconv.Itoa(x.from))
			f["ip-permission.to-port"] = append(f["ip-permission.to-port"], strconv.Itoa(x.to))
		}
		switch {
		case x.group != "":
			f["ip-permission.group-id"] = append(f["ip-permission.group-id"], x.group)
		case strings.Contains(x.cidr, ":"):
			f["ip-permission.ipv6-cidr"] = append(f["ip-permission.ipv6-cidr"], x.cidr)
		default:
			f["ip-permission.cidr"] = append(f["ip-permission.cidr"], x.cidr)
		}
	}
	return f
}

type xmlSecurityGroup struct {
	OwnerID     string          `xml:"ownerId"`
	GroupID     string          `xml:"groupId"`
	GroupName   string          `xml:"groupName"`
	Description string          `xml:"groupDescription"`
	Ingress     []xmlPermission `xml:"ipPermissions>item"`
	Egress      []xmlPermission `xml:"ipPermissionsEgress>item"`
	VpcID       string          `xml:"vpcId"`
	ARN         string          `xml:"securityGroupArn"`
	Tags        []xmlTag        `xml:"tagSet>item"`
}

type xmlPermission struct {
	Protocol   string         `xml:"ipProtocol"`
	FromPort   *int           `xml:"fromPort,omitempty"`
	ToPort     *int           `xml:"toPort,omitempty"`
	Groups     []xmlGroupPair `xml:"groups>item"`
	IPRanges   []xmlIPRange   `xml:"ipRanges>item"`
	IPv6Ranges []xmlIPv6Range `xml:"ipv6Ranges>item"`
}

type xmlGroupPair struct {
	UserID      string `xml:"userId"`
	GroupID     string `xml:"groupId"`
	Description string `xml:"description,omitempty"`
}

type xmlIPRange struct {
	CIDR        string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type xmlIPv6Range struct {
	CIDR        string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

// groupXML is g as DescribeSecurityGroups lists it: its rules grouped by
// protocol and port range, as EC2 does.
func (s *Server) groupXML(g *securityGroup) xmlSecurityGroup {
	x := xmlSecurityGroup{
		OwnerID:     s.Account,
		GroupID:     g.id,
		GroupName:   g.name,
		Description: g.description,
		Egress:      []xmlPermission{{Protocol: "-1", IPRanges: []xmlIPRange{{CIDR: "0.0.0.0/0"}}}},
		VpcID:       defaultVPC,
		ARN:         s.groupARN(g),
		Tags:        tagSet(g.tags),
	}
	index := map[string]int{}
	for _, r := range g.rules {
		k := fmt.Sprintf("%s|%d|%d", r.proto, r.from, r.to)
		i, ok := index[k]
		if !ok {
			p := xmlPermission{Protocol: r.proto}
			if r.ports {
				p.FromPort, p.ToPort = &r.from, &r.to
			}
			i = len(x.Ingress)
			index[k] = i
			x.Ingress = append(x.Ingress, p)
		}
		p := &x.Ingress[i]
		switch {
		case r.group != "":
			p.Groups = append(p.Groups, xmlGroupPair{s.Account, r.group, r.description})
		case strings.Contains(r.cidr, ":"):
			p.IPv6Ranges = append(p.IPv6Ranges, xmlIPv6Range{r.cidr, r.description})
		default:
			p.IPRanges = append(p.IPRanges, xmlIPRange{r.cidr, r.description})
		}
	}
	return x
}
