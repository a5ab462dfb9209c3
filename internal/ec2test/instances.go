package ec2test

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Instance is a snapshot of an instance of the fake.
type Instance struct {
	ID, State, ImageID, InstanceType, KeyName, ClientToken string
	Tags                                                   map[string]string
	UserData                                               []byte
	PublicIP, PrivateIP                                    string
	SecurityGroupIDs                                       []string
	InstanceProfile                                        string // IAM instance profile name
	HTTPTokens                                             string // "required": IMDSv2 only
}

// instance is an instance of the fake. The embedded Instance is what
// Instances reports.
type instance struct {
	Instance
	reservation *reservation
	launchIndex int
	launchTime  time.Time
	arch        string
	httpTokens  string
	hopLimit    int
	reason      string          // the state transition reason
	stateReason *xmlStateReason // why it was terminated
	cancel      context.CancelFunc
	machine     Machine // once running
	console     []byte  // the console output as it was terminated
}

// reservation is what one RunInstances launched.
type reservation struct {
	id        string
	params    string // the request but its ClientToken, for idempotency
	instances []*instance
}

// stateCodes are the codes of instance states.
var stateCodes = map[string]int{
	"pending":       0,
	"running":       16,
	"shutting-down": 32,
	"terminated":    48,
	"stopping":      64,
	"stopped":       80,
}

// userDataMax is the most user data EC2 takes, decoded.
const userDataMax = 16384

// instanceMax is the most instances one RunInstances launches.
const instanceMax = 20

// Instances returns a snapshot of all instances, terminated ones included,
// in launch order.
func (s *Server) Instances() []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Instance, len(s.instances))
	for i, inst := range s.instances {
		c := inst.Instance
		c.Tags = maps.Clone(inst.Tags)
		c.UserData = slices.Clone(inst.UserData)
		c.SecurityGroupIDs = slices.Clone(inst.SecurityGroupIDs)
		out[i] = c
	}
	return out
}

// instance returns the instance id, or nil. s.mu is held.
func (s *Server) instance(id string) *instance {
	for _, inst := range s.instances {
		if inst.ID == id {
			return inst
		}
	}
	return nil
}

var instanceIDRE = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)

// lookupInstances returns the instances ids, failing like EC2 on
// malformed and unknown IDs. s.mu is held.
func (s *Server) lookupInstances(ids []string) ([]*instance, error) {
	var out []*instance
	var missing []string
	for _, id := range ids {
		if !instanceIDRE.MatchString(id) {
			return nil, apiErr("InvalidInstanceID.Malformed", "Invalid id: %q", id)
		}
		if inst := s.instance(id); inst != nil {
			out = append(out, inst)
		} else {
			missing = append(missing, id)
		}
	}
	switch len(missing) {
	case 0:
		return out, nil
	case 1:
		return nil, apiErr("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", missing[0])
	default:
		return nil, apiErr("InvalidInstanceID.NotFound", "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
	}
}

// runInstances is RunInstances: it answers at once with pending instances
// and launches their machines in the background.
func (s *Server) runInstances(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := r.form
	token := f.Get("ClientToken")
	params := maps.Clone(f)
	delete(params, "ClientToken")
	paramsKey := encodeForm(params)
	if res := s.tokens[token]; token != "" && res != nil {
		if res.params != paramsKey {
			return nil, apiErr("IdempotentParameterMismatch",
				"Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
		}
		return s.reservationXML(r, res), nil
	}
	if len(token) > 64 {
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter clientToken is invalid. Client token must be at most 64 characters.", token)
	}

	imageID := f.Get("ImageId")
	if imageID == "" {
		return nil, apiErr("MissingParameter", "The request must contain the parameter ImageId")
	}
	img := s.image(imageID)
	if img == nil {
		return nil, apiErr("InvalidAMIID.NotFound", "The image id '[%s]' does not exist", imageID)
	}
	instanceType := f.Get("InstanceType")
	if instanceType == "" {
		instanceType = "m1.small"
	}
	family, size, ok := strings.Cut(instanceType, ".")
	if !ok || family == "" || size == "" {
		return nil, apiErr("InvalidParameterValue", "Invalid value '%s' for InstanceType.", instanceType)
	}
	if arch := typeArch(family); arch != img.arch {
		return nil, apiErr("InvalidParameterValue", "The architecture '%s' of the specified instance type does not match the architecture '%s' of the specified AMI. Specify an instance type and an AMI that have matching architectures, and try again. You can use 'describe-instance-types' or 'describe-images' to discover the architecture of the instance type or AMI.", arch, img.arch)
	}

	minCount, err := count(f, "MinCount")
	if err != nil {
		return nil, err
	}
	maxCount, err := count(f, "MaxCount")
	if err != nil {
		return nil, err
	}
	if maxCount < minCount {
		return nil, apiErr("InvalidParameterValue", "Value (%d) for parameter maxCount is invalid. Must be greater than or equal to minCount.", maxCount)
	}
	if minCount > instanceMax {
		return nil, apiErr("InstanceLimitExceeded", "You have requested more instances (%d) than your current instance limit of %d allows for the specified instance type. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.", minCount, instanceMax)
	}
	n := min(maxCount, instanceMax)

	var key *keyPair
	if name := f.Get("KeyName"); name != "" {
		if key = s.keyByName(name); key == nil {
			return nil, apiErr("InvalidKeyPair.NotFound", "The key pair '%s' does not exist", name)
		}
	}

	var groups []*securityGroup
	for _, id := range list(f, "SecurityGroupId") {
		g := s.groupByID(id)
		if g == nil {
			return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist", id)
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	for _, name := range list(f, "SecurityGroup") {
		g := s.groupByName(name)
		if g == nil {
			return nil, apiErr("InvalidGroup.NotFound", "The security group '%s' does not exist in VPC '%s'", name, defaultVPC)
		}
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		groups = []*securityGroup{s.groupByName("default")}
	}
	var groupIDs []string
	for _, g := range groups {
		groupIDs = append(groupIDs, g.id)
	}

	profileName := f.Get("IamInstanceProfile.Name")
	if arn := f.Get("IamInstanceProfile.Arn"); profileName == "" && arn != "" {
		profileName = arn[strings.LastIndex(arn, "/")+1:]
	}
	if profileName != "" && s.profiles[profileName] == nil {
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", profileName)
	}

	userData, err := base64.StdEncoding.DecodeString(f.Get("UserData"))
	if err != nil {
		return nil, apiErr("InvalidParameterValue", "Invalid BASE64 encoding of user data.")
	}
	if len(userData) > userDataMax {
		return nil, apiErr("InvalidParameterValue", "User data is limited to %d bytes", userDataMax)
	}

	tags, err := tagSpecs(f, "instance", "volume", "network-interface")
	if err != nil {
		return nil, err
	}

	httpTokens := f.Get("MetadataOptions.HttpTokens")
	switch httpTokens {
	case "":
		httpTokens = "optional"
	case "optional", "required":
	default:
		return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter HttpTokens is invalid. Valid values are optional, required.", httpTokens)
	}
	hopLimit := 1
	if v := f.Get("MetadataOptions.HttpPutResponseHopLimit"); v != "" {
		if hopLimit, err = strconv.Atoi(v); err != nil || hopLimit < 1 || hopLimit > 64 {
			return nil, apiErr("InvalidParameterValue", "Value (%s) for parameter HttpPutResponseHopLimit is invalid. Valid values are 1 to 64.", v)
		}
	}

	res := &reservation{id: newID("r"), params: paramsKey}
	now := time.Now()
	for i := range n {
		inst := &instance{
			Instance: Instance{
				ID:               newID("i"),
				State:            "pending",
				ImageID:          img.id,
				InstanceType:     instanceType,
				ClientToken:      token,
				Tags:             maps.Clone(tags),
				UserData:         slices.Clone(userData),
				SecurityGroupIDs: slices.Clone(groupIDs),
				InstanceProfile:  profileName,
				HTTPTokens:       httpTokens,
			},
			reservation: res,
			launchIndex: i,
			launchTime:  now,
			arch:        img.arch,
			httpTokens:  httpTokens,
			hopLimit:    hopLimit,
		}
		spec := LaunchSpec{
			InstanceID:         inst.ID,
			ImageID:            img.id,
			InstanceType:       instanceType,
			UserData:           slices.Clone(userData),
			Tags:               maps.Clone(tags),
			HTTPTokensRequired: httpTokens == "required",
			InstanceProfile:    profileName,
		}
		if key != nil {
			inst.KeyName, spec.KeyName, spec.KeyMaterial = key.name, key.name, key.publicKey
		}
		res.instances = append(res.instances, inst)
		s.instances = append(s.instances, inst)
		var ctx context.Context
		ctx, inst.cancel = context.WithCancel(s.ctx)
		s.bg.Add(1)
		go s.launch(ctx, inst, spec)
	}
	if token != "" {
		s.tokens[token] = res
	}
	return s.reservationXML(r, res), nil
}

// count is the parameter name, a positive count of instances.
func count(f url.Values, name string) (int, error) {
	v := f.Get(name)
	if v == "" {
		return 0, apiErr("MissingParameter", "The request must contain the parameter %s", name)
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, apiErr("InvalidParameterValue", "Value (%s) for parameter %s is invalid. Expected a positive integer.", v, name)
	}
	return n, nil
}

// encodeForm is a canonical encoding of request parameters.
func encodeForm(f url.Values) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(f)) {
		fmt.Fprintf(&b, "%q=%q\n", k, f[k])
	}
	return b.String()
}

// typeArch is the architecture of an instance type family: arm64 for
// Graviton families (a1, and those with a g after the generation, like
// t4g, m7gd, c6gn, is4gen), x86_64 for the others.
func typeArch(family string) string {
	if family == "a1" {
		return "arm64"
	}
	i := strings.IndexAny(family, "0123456789")
	if i >= 0 && strings.Contains(strings.TrimLeft(family[i:], "0123456789"), "g") {
		return "arm64"
	}
	return "x86_64"
}

// launch boots the machine of inst, which becomes running, or terminated
// if that fails.
func (s *Server) launch(ctx context.Context, inst *instance, spec LaunchSpec) {
	defer s.bg.Done()
	m, err := s.launcher.Launch(ctx, spec)
	var public, private string
	if err == nil {
		public, private = m.PublicIP(), m.PrivateIP()
	}
	s.mu.Lock()
	if err != nil {
		inst.State = "terminated"
		if inst.stateReason == nil {
			inst.stateReason = &xmlStateReason{"Server.InternalError", "Server.InternalError: Internal error on launch"}
			inst.reason = "Server.InternalError: Internal error on launch"
		}
		s.mu.Unlock()
		if ctx.Err() == nil {
			s.t.Logf("ec2test: launch %s: %v", inst.ID, err)
		}
		return
	}
	if inst.State != "pending" { // terminated while it launched
		s.mu.Unlock()
		s.terminate(inst, m)
		return
	}
	inst.State = "running"
	inst.machine = m
	inst.PublicIP, inst.PrivateIP = public, private
	s.mu.Unlock()
}

// terminate terminates the machine of inst, which is shutting down.
func (s *Server) terminate(inst *instance, m Machine) {
	console := m.Console()
	if err := m.Terminate(); err != nil {
		s.t.Errorf("ec2test: terminate %s: %v", inst.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	inst.State = "terminated"
	inst.console = console
	inst.PublicIP, inst.PrivateIP = "", ""
	s.dropAddresses(inst) // status.go
}

// takeRunning marks the running instances terminated (for cleanup) and
// returns them, so their machines can be terminated.
func (s *Server) takeRunning() []*instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*instance
	for _, inst := range s.instances {
		if inst.State == "running" {
			inst.State = "terminated"
			out = append(out, inst)
		}
	}
	return out
}

// terminateInstances is TerminateInstances: the instances shut down at
// once and are terminated when their machines are.
func (s *Server) terminateInstances(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := list(r.form, "InstanceId")
	if len(ids) == 0 {
		return nil, apiErr("MissingParameter", "The request must contain the parameter InstanceId")
	}
	insts, err := s.lookupInstances(ids)
	if err != nil {
		return nil, err
	}
	type change struct {
		InstanceID string   `xml:"instanceId"`
		Current    xmlState `xml:"currentState"`
		Previous   xmlState `xml:"previousState"`
	}
	resp := &struct {
		RequestID string   `xml:"requestId"`
		Instances []change `xml:"instancesSet>item"`
	}{RequestID: r.id}
	now := time.Now().UTC()
	for _, inst := range insts {
		prev := inst.State
		switch inst.State {
		case "pending", "running":
			inst.State = "shutting-down"
			inst.reason = "User initiated (" + now.Format("2006-01-02 15:04:05 MST") + ")"
			inst.stateReason = &xmlStateReason{"Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown"}
			if prev == "pending" {
				inst.cancel() // launch terminates the machine, if any
			} else {
				m := inst.machine
				s.bg.Add(1)
				go func() {
					defer s.bg.Done()
					s.terminate(inst, m)
				}()
			}
		}
		resp.Instances = append(resp.Instances, change{inst.ID, state(inst.State), state(prev)})
	}
	return resp, nil
}

// describeInstances is DescribeInstances, without pagination.
func (s *Server) describeInstances(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, err := filters(r.form, "architecture", "availability-zone", "client-token", "dns-name", "image-id",
		"instance-id", "instance-state-code", "instance-state-name", "instance-type", "instance.group-id",
		"instance.group-name", "ip-address", "key-name", "owner-id", "private-dns-name", "private-ip-address",
		"reservation-id", "subnet-id", "vpc-id")
	if err != nil {
		return nil, err
	}
	ids := list(r.form, "InstanceId")
	insts := s.instances
	if len(ids) > 0 {
		if insts, err = s.lookupInstances(ids); err != nil {
			return nil, err
		}
	}
	resp := &struct {
		RequestID    string           `xml:"requestId"`
		Reservations []xmlReservation `xml:"reservationSet>item"`
	}{RequestID: r.id}
	for _, inst := range s.instances {
		if !slices.Contains(insts, inst) || !match(fs, s.instanceFields(inst), inst.Tags) {
			continue
		}
		if n := len(resp.Reservations); n == 0 || resp.Reservations[n-1].ReservationID != inst.reservation.id {
			resp.Reservations = append(resp.Reservations, xmlReservation{ReservationID: inst.reservation.id, OwnerID: s.Account})
		}
		res := &resp.Reservations[len(resp.Reservations)-1]
		res.Instances = append(res.Instances, s.instanceXML(inst))
	}
	return resp, nil
}

// instanceFields are the values DescribeInstances filters on.
func (s *Server) instanceFields(inst *instance) map[string][]string {
	x := s.instanceXML(inst)
	f := map[string][]string{
		"architecture":        {inst.arch},
		"availability-zone":   {zone},
		"client-token":        {inst.ClientToken},
		"dns-name":            {x.DNSName},
		"image-id":            {inst.ImageID},
		"instance-id":         {inst.ID},
		"instance-state-code": {strconv.Itoa(stateCodes[inst.State])},
		"instance-state-name": {inst.State},
		"instance-type":       {inst.InstanceType},
		"ip-address":          {inst.PublicIP},
		"key-name":            {inst.KeyName},
		"owner-id":            {s.Account},
		"private-dns-name":    {x.PrivateDNSName},
		"private-ip-address":  {inst.PrivateIP},
		"reservation-id":      {inst.reservation.id},
		"subnet-id":           {defaultSubnet},
		"vpc-id":              {defaultVPC},
	}
	for _, g := range x.Groups {
		f["instance.group-id"] = append(f["instance.group-id"], g.GroupID)
		f["instance.group-name"] = append(f["instance.group-name"], g.GroupName)
	}
	return f
}

// getConsoleOutput is GetConsoleOutput: the latest 64 KiB of the
// machine's console, whether or not Latest is set. A terminated instance
// keeps the output it had.
func (s *Server) getConsoleOutput(r *request) (any, error) {
	id := r.form.Get("InstanceId")
	if id == "" {
		return nil, apiErr("MissingParameter", "The request must contain the parameter InstanceId")
	}
	s.mu.Lock()
	insts, err := s.lookupInstances([]string{id})
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	inst := insts[0]
	var m Machine
	if inst.State == "running" {
		m = inst.machine
	}
	console := inst.console
	s.mu.Unlock()
	if m != nil {
		console = m.Console()
	}
	const consoleMax = 64 << 10
	if len(console) > consoleMax {
		console = console[len(console)-consoleMax:]
	}
	resp := &struct {
		RequestID  string `xml:"requestId"`
		InstanceID string `xml:"instanceId"`
		Timestamp  string `xml:"timestamp"`
		Output     string `xml:"output,omitempty"`
	}{RequestID: r.id, InstanceID: id, Timestamp: timestamp(time.Now())}
	if len(console) > 0 {
		resp.Output = base64.StdEncoding.EncodeToString(console)
	}
	return resp, nil
}

// The XML of instances.

type xmlReservation struct {
	RequestID     string        `xml:"requestId,omitempty"` // as the answer of RunInstances
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []xmlGroup    `xml:"groupSet>item"`
	Instances     []xmlInstance `xml:"instancesSet>item"`
}

type xmlInstance struct {
	InstanceID         string             `xml:"instanceId"`
	ImageID            string             `xml:"imageId"`
	State              xmlState           `xml:"instanceState"`
	PrivateDNSName     string             `xml:"privateDnsName"`
	DNSName            string             `xml:"dnsName"`
	Reason             string             `xml:"reason"`
	KeyName            string             `xml:"keyName,omitempty"`
	LaunchIndex        int                `xml:"amiLaunchIndex"`
	InstanceType       string             `xml:"instanceType"`
	LaunchTime         string             `xml:"launchTime"`
	Placement          xmlPlacement       `xml:"placement"`
	Monitoring         string             `xml:"monitoring>state"`
	SubnetID           string             `xml:"subnetId"`
	VpcID              string             `xml:"vpcId"`
	PrivateIP          string             `xml:"privateIpAddress,omitempty"`
	PublicIP           string             `xml:"ipAddress,omitempty"`
	Groups             []xmlGroup         `xml:"groupSet>item"`
	StateReason        *xmlStateReason    `xml:"stateReason"`
	Architecture       string             `xml:"architecture"`
	RootDeviceType     string             `xml:"rootDeviceType"`
	RootDeviceName     string             `xml:"rootDeviceName"`
	VirtualizationType string             `xml:"virtualizationType"`
	ClientToken        string             `xml:"clientToken,omitempty"`
	Tags               []xmlTag           `xml:"tagSet>item"`
	Hypervisor         string             `xml:"hypervisor"`
	PlatformDetails    string             `xml:"platformDetails"`
	MetadataOptions    xmlMetadataOptions `xml:"metadataOptions"`
}

type xmlState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

func state(name string) xmlState { return xmlState{stateCodes[name], name} }

type xmlStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xmlGroup struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type xmlPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xmlMetadataOptions struct {
	State                string `xml:"state"`
	HTTPTokens           string `xml:"httpTokens"`
	HTTPPutHopLimit      int    `xml:"httpPutResponseHopLimit"`
	HTTPEndpoint         string `xml:"httpEndpoint"`
	HTTPProtocolIPv6     string `xml:"httpProtocolIpv6"`
	InstanceMetadataTags string `xml:"instanceMetadataTags"`
}

// reservationXML is the answer of RunInstances. s.mu is held.
func (s *Server) reservationXML(r *request, res *reservation) *xmlReservation {
	x := &xmlReservation{RequestID: r.id, ReservationID: res.id, OwnerID: s.Account}
	for _, inst := range res.instances {
		x.Instances = append(x.Instances, s.instanceXML(inst))
	}
	return x
}

// instanceXML is inst as DescribeInstances lists it. s.mu is held.
func (s *Server) instanceXML(inst *instance) xmlInstance {
	x := xmlInstance{
		InstanceID:         inst.ID,
		ImageID:            inst.ImageID,
		State:              state(inst.State),
		Reason:             inst.reason,
		KeyName:            inst.KeyName,
		LaunchIndex:        inst.launchIndex,
		InstanceType:       inst.InstanceType,
		LaunchTime:         timestamp(inst.launchTime),
		Placement:          xmlPlacement{zone, "default"},
		Monitoring:         "disabled",
		SubnetID:           defaultSubnet,
		VpcID:              defaultVPC,
		PrivateIP:          inst.PrivateIP,
		PublicIP:           inst.PublicIP,
		StateReason:        inst.stateReason,
		Architecture:       inst.arch,
		RootDeviceType:     "ebs",
		RootDeviceName:     "/dev/xvda",
		VirtualizationType: "hvm",
		ClientToken:        inst.ClientToken,
		Tags:               tagSet(inst.Tags),
		Hypervisor:         "xen",
		PlatformDetails:    "Linux/UNIX",
		MetadataOptions: xmlMetadataOptions{
			State:                "applied",
			HTTPTokens:           inst.httpTokens,
			HTTPPutHopLimit:      inst.hopLimit,
			HTTPEndpoint:         "enabled",
			HTTPProtocolIPv6:     "disabled",
			InstanceMetadataTags: "disabled",
		},
	}
	if inst.State == "pending" {
		x.MetadataOptions.State = "pending"
	}
	if a, err := netip.ParseAddr(inst.PrivateIP); err == nil && a.Is4() {
		x.PrivateDNSName = "ip-" + strings.ReplaceAll(a.String(), ".", "-") + ".ec2.internal"
	}
	if a, err := netip.ParseAddr(inst.PublicIP); err == nil && a.Is4() {
		x.DNSName = "ec2-" + strings.ReplaceAll(a.String(), ".", "-") + ".compute-1.amazonaws.com"
	}
	for _, id := range inst.SecurityGroupIDs {
		name := ""
		if g := s.groupByID(id); g != nil {
			name = g.name
		}
		x.Groups = append(x.Groups, xmlGroup{id, name})
	}
	return x
}

// nullLauncher is the Launcher of New(t, nil): its machines are nothing
// but addresses.
type nullLauncher struct{ n atomic.Int32 }

func (l *nullLauncher) Launch(ctx context.Context, spec LaunchSpec) (Machine, error) {
	n := l.n.Add(1)
	return nullMachine{
		public:  fmt.Sprintf("198.51.100.%d", (n-1)%254+1),
		private: fmt.Sprintf("172.31.%d.%d", (n-1)/254%256, (n-1)%254+1),
	}, nil
}

type nullMachine struct{ public, private string }

func (m nullMachine) PublicIP() string  { return m.public }
func (m nullMachine) PrivateIP() string { return m.private }
func (m nullMachine) Console() []byte   { return nil }
func (m nullMachine) Terminate() error  { return nil }
