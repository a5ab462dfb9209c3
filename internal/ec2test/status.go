package ec2test

import (
	"fmt"
	"slices"
	"strconv"
)

// This file: DescribeInstanceStatus and the Elastic IP actions (issue #22
// §3, recovery by relaunch). Registered from init, beside ec2Actions, so
// that other helpers adding actions do not edit the same lines.

func init() {
	ec2Actions["DescribeInstanceStatus"] = (*Server).describeInstanceStatus
	ec2Actions["AllocateAddress"] = (*Server).allocateAddress
	ec2Actions["DescribeAddresses"] = (*Server).describeAddresses
	ec2Actions["AssociateAddress"] = (*Server).associateAddress
	ec2Actions["DisassociateAddress"] = (*Server).disassociateAddress
	ec2Actions["ReleaseAddress"] = (*Server).releaseAddress
}

// Reachable is what a Machine may also implement: false when its
// operating system no longer answers (a lab container that was stopped).
// DescribeInstanceStatus then reports the instance's status check
// "impaired", as EC2's reachability check does for a hung or crashed
// instance. A Machine without it is always reachable.
type Reachable interface {
	Reachable() bool
}

// Impair makes the status checks of instance id fail (instance status
// "impaired") from now on, whatever its machine says.
func (s *Server) Impair(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.impaired == nil {
		s.impaired = map[string]bool{}
	}
	s.impaired[id] = true
}

type xmlStatusDetail struct {
	Name   string `xml:"name"`
	Status string `xml:"status"`
}

type xmlStatusSummary struct {
	Status  string            `xml:"status"`
	Details []xmlStatusDetail `xml:"details>item"`
}

type xmlInstanceStatus struct {
	InstanceID       string           `xml:"instanceId"`
	AvailabilityZone string           `xml:"availabilityZone"`
	State            xmlState         `xml:"instanceState"`
	SystemStatus     xmlStatusSummary `xml:"systemStatus"`
	InstanceStatus   xmlStatusSummary `xml:"instanceStatus"`
}

func summary(ok bool) xmlStatusSummary {
	if ok {
		return xmlStatusSummary{"ok", []xmlStatusDetail{{"reachability", "passed"}}}
	}
	return xmlStatusSummary{"impaired", []xmlStatusDetail{{"reachability", "failed"}}}
}

// describeInstanceStatus is DescribeInstanceStatus: the running instances
// (all with IncludeAllInstances=true), each with its system status (always
// ok: the fake's hardware does not fail) and its instance status (impaired
// when Impair was called, or its machine is not Reachable).
func (s *Server) describeInstanceStatus(r *request) (any, error) {
	all := r.form.Get("IncludeAllInstances") == "true"
	fs, err := filters(r.form, "availability-zone", "instance-id", "instance-state-code", "instance-state-name",
		"instance-status.status", "instance-status.reachability", "system-status.status", "system-status.reachability")
	if err != nil {
		return nil, err
	}
	if v := r.form.Get("MaxResults"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 5 || n > 1000 {
			return nil, apiErr("InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", v)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := list(r.form, "InstanceId")
	if len(ids) > 0 && r.form.Get("MaxResults") != "" {
		return nil, apiErr("InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
	}
	insts := s.instances
	if len(ids) > 0 {
		if insts, err = s.lookupInstances(ids); err != nil {
			return nil, err
		}
	}
	resp := &struct {
		RequestID string              `xml:"requestId"`
		Statuses  []xmlInstanceStatus `xml:"instanceStatusSet>item"`
	}{RequestID: r.id}
	for _, inst := range s.instances {
		if !slices.Contains(insts, inst) || (!all && inst.State != "running") {
			continue
		}
		x := xmlInstanceStatus{InstanceID: inst.ID, AvailabilityZone: zone, State: state(inst.State)}
		if inst.State == "running" {
			ok := !s.impaired[inst.ID]
			if m, isR := inst.machine.(Reachable); isR && ok {
				ok = m.Reachable()
			}
			x.SystemStatus, x.InstanceStatus = summary(true), summary(ok)
		} else {
			x.SystemStatus = xmlStatusSummary{Status: "not-applicable"}
			x.InstanceStatus = xmlStatusSummary{Status: "not-applicable"}
		}
		fields := map[string][]string{
			"availability-zone":            {zone},
			"instance-id":                  {inst.ID},
			"instance-state-code":          {strconv.Itoa(stateCodes[inst.State])},
			"instance-state-name":          {inst.State},
			"instance-status.status":       {x.InstanceStatus.Status},
			"system-status.status":         {x.SystemStatus.Status},
			"instance-status.reachability": detail(x.InstanceStatus),
			"system-status.reachability":   detail(x.SystemStatus),
		}
		if !match(fs, fields, nil) {
			continue
		}
		resp.Statuses = append(resp.Statuses, x)
	}
	return resp, nil
}

func detail(x xmlStatusSummary) []string {
	var out []string
	for _, d := range x.Details {
		out = append(out, d.Status)
	}
	return out
}

// address is an Elastic IP of the fake.
//
// The stand-in: a real Elastic IP is a public address EC2 routes to the
// instance's private address. The fake allocates addresses from
// 198.51.100.0/24 (TEST-NET-2, routed nowhere) and, on association, makes
// the instance's PublicIP that address, as EC2 does, in DescribeInstances
// and Instances. Nothing routes 198.51.100.x to a lab machine, so a test
// that wants to reach "the EIP" resolves it through the fake: Address
// returns the machine's own lab address behind an EIP, which is what EC2's
// NAT does for real traffic.
type address struct {
	AllocationID, PublicIP, AssociationID string
	instance                              *instance // nil when not associated
	tags                                  map[string]string
}

// AddressHolder is what a Machine may also implement to receive the
// traffic of an Elastic IP: Attach(ip) on association (a lab machine: a
// route to it on the host and the address on its interface, the
// stand-in for EC2's one-to-one NAT), Detach(ip) when the address leaves
// it. The fake calls them with its lock held, so they must not call it.
type AddressHolder interface {
	Attach(ip string) error
	Detach(ip string) error
}

// Address returns the reachable address of the machine behind Elastic IP
// eip (its lab address), or "" if eip is not associated with a running
// instance.
func (s *Server) Address(eip string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.addresses {
		if a.PublicIP == eip && a.instance != nil && a.instance.State == "running" && a.instance.machine != nil {
			return a.instance.machine.PublicIP()
		}
	}
	return ""
}

// Addresses returns the allocated Elastic IPs: public IP -> allocation ID.
func (s *Server) Addresses() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, a := range s.addresses {
		out[a.PublicIP] = a.AllocationID
	}
	return out
}

// addressMax is EC2's default quota of Elastic IPs per region.
const addressMax = 5

func (s *Server) allocateAddress(r *request) (any, error) {
	if d := r.form.Get("Domain"); d != "" && d != "vpc" {
		return nil, apiErr("InvalidParameterValue", "Invalid value '%s' for domain.", d)
	}
	if r.form.Get("Address") != "" || r.form.Get("PublicIpv4Pool") != "" {
		return nil, apiErr("InvalidParameterValue", "the fake allocates from Amazon's pool only (no Address, no PublicIpv4Pool)")
	}
	tags, err := tagSpecs(r.form, "elastic-ip")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.addresses) >= addressMax {
		return nil, apiErr("AddressLimitExceeded", "The maximum number of addresses has been reached.")
	}
	s.addrSeq++
	a := &address{AllocationID: newID("eipalloc"), PublicIP: fmt.Sprintf("198.51.100.%d", 100+s.addrSeq), tags: tags}
	s.addresses = append(s.addresses, a)
	return &struct {
		RequestID    string `xml:"requestId"`
		PublicIP     string `xml:"publicIp"`
		Domain       string `xml:"domain"`
		AllocationID string `xml:"allocationId"`
	}{r.id, a.PublicIP, "vpc", a.AllocationID}, nil
}

// lookupAddress finds allocation id; s.mu is held.
func (s *Server) lookupAddress(id string) (*address, error) {
	if id == "" {
		return nil, apiErr("MissingParameter", "The request must contain the parameter AllocationId")
	}
	for _, a := range s.addresses {
		if a.AllocationID == id {
			return a, nil
		}
	}
	return nil, apiErr("InvalidAllocationID.NotFound", "The allocation ID '%s' does not exist", id)
}

type xmlAddress struct {
	PublicIP           string   `xml:"publicIp"`
	AllocationID       string   `xml:"allocationId"`
	Domain             string   `xml:"domain"`
	InstanceID         string   `xml:"instanceId,omitempty"`
	AssociationID      string   `xml:"associationId,omitempty"`
	PrivateIPAddress   string   `xml:"privateIpAddress,omitempty"`
	NetworkBorderGroup string   `xml:"networkBorderGroup"`
	Tags               []xmlTag `xml:"tagSet>item"`
}

func (s *Server) describeAddresses(r *request) (any, error) {
	fs, err := filters(r.form, "allocation-id", "association-id", "domain", "instance-id", "public-ip", "private-ip-address")
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ids, ips := list(r.form, "AllocationId"), list(r.form, "PublicIp")
	for _, id := range ids {
		if _, err := s.lookupAddress(id); err != nil {
			return nil, err
		}
	}
	for _, ip := range ips {
		if !slices.ContainsFunc(s.addresses, func(a *address) bool { return a.PublicIP == ip }) {
			return nil, apiErr("InvalidAddress.NotFound", "Address '%s' not found.", ip)
		}
	}
	resp := &struct {
		RequestID string       `xml:"requestId"`
		Addresses []xmlAddress `xml:"addressesSet>item"`
	}{RequestID: r.id}
	for _, a := range s.addresses {
		if len(ids) > 0 && !slices.Contains(ids, a.AllocationID) || len(ips) > 0 && !slices.Contains(ips, a.PublicIP) {
			continue
		}
		x := xmlAddress{PublicIP: a.PublicIP, AllocationID: a.AllocationID, Domain: "vpc", NetworkBorderGroup: region, Tags: tagSet(a.tags)}
		if a.instance != nil {
			x.InstanceID, x.AssociationID, x.PrivateIPAddress = a.instance.ID, a.AssociationID, a.instance.PrivateIP
		}
		fields := map[string][]string{"allocation-id": {a.AllocationID}, "association-id": {x.AssociationID}, "domain": {"vpc"},
			"instance-id": {x.InstanceID}, "public-ip": {a.PublicIP}, "private-ip-address": {x.PrivateIPAddress}}
		if !match(fs, fields, a.tags) {
			continue
		}
		resp.Addresses = append(resp.Addresses, x)
	}
	return resp, nil
}

// associateAddress is AssociateAddress with AllocationId and InstanceId
// (the fake has no network interfaces). The instance must be running; an
// address already associated elsewhere moves only with
// AllowReassociation=true. The instance's public address becomes the EIP.
func (s *Server) associateAddress(r *request) (any, error) {
	if r.form.Get("NetworkInterfaceId") != "" || r.form.Get("PublicIp") != "" {
		return nil, apiErr("InvalidParameterCombination", "the fake associates by AllocationId and InstanceId only")
	}
	iid := r.form.Get("InstanceId")
	if iid == "" {
		return nil, apiErr("MissingParameter", "Either instance ID or network interface id must be specified")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookupAddress(r.form.Get("AllocationId"))
	if err != nil {
		return nil, err
	}
	insts, err := s.lookupInstances([]string{iid})
	if err != nil {
		return nil, err
	}
	inst := insts[0]
	if inst.State != "running" {
		return nil, apiErr("IncorrectInstanceState", "The pending-instance-creation instance to which 'AllocationId' is to be associated is not in a valid state. Instance %s is in state %s.", inst.ID, inst.State)
	}
	if a.instance != nil && a.instance != inst && r.form.Get("AllowReassociation") != "true" {
		return nil, apiErr("Resource.AlreadyAssociated", "resource %s is already associated with associate-id %s", a.AllocationID, a.AssociationID)
	}
	if a.instance != nil {
		s.unassociate(a)
	}
	// An instance has one public address: an EIP already on it goes.
	for _, o := range s.addresses {
		if o.instance == inst {
			s.unassociate(o)
		}
	}
	if h, ok := inst.machine.(AddressHolder); ok {
		if err := h.Attach(a.PublicIP); err != nil {
			return nil, &apiError{status: 500, code: "InternalError", message: "attaching " + a.PublicIP + ": " + err.Error()}
		}
	}
	a.instance, a.AssociationID = inst, newID("eipassoc")
	if inst.machine != nil {
		inst.PublicIP = a.PublicIP
	}
	return &struct {
		RequestID     string `xml:"requestId"`
		Return        bool   `xml:"return"`
		AssociationID string `xml:"associationId"`
	}{r.id, true, a.AssociationID}, nil
}

// unassociate takes a off its instance, which gets its own public address
// back while it runs; s.mu is held.
func (s *Server) unassociate(a *address) {
	if inst := a.instance; inst != nil && inst.machine != nil {
		if h, ok := inst.machine.(AddressHolder); ok {
			if err := h.Detach(a.PublicIP); err != nil {
				s.t.Errorf("ec2test: detaching %s from %s: %v", a.PublicIP, inst.ID, err)
			}
		}
	}
	if inst := a.instance; inst != nil && inst.State == "running" && inst.machine != nil {
		inst.PublicIP = inst.machine.PublicIP()
	}
	a.instance, a.AssociationID = nil, ""
}

func (s *Server) disassociateAddress(r *request) (any, error) {
	id := r.form.Get("AssociationId")
	if id == "" {
		return nil, apiErr("MissingParameter", "The request must contain the parameter AssociationId")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.addresses {
		if a.AssociationID == id {
			s.unassociate(a)
			return &struct {
				RequestID string `xml:"requestId"`
				Return    bool   `xml:"return"`
			}{r.id, true}, nil
		}
	}
	return nil, apiErr("InvalidAssociationID.NotFound", "The association ID '%s' does not exist", id)
}

// releaseAddress is ReleaseAddress: an associated address must be
// disassociated first, as in a VPC.
func (s *Server) releaseAddress(r *request) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.lookupAddress(r.form.Get("AllocationId"))
	if err != nil {
		return nil, err
	}
	if a.instance != nil && a.instance.State == "running" {
		return nil, apiErr("InvalidIPAddress.InUse", "Address %s is in use.", a.PublicIP)
	}
	s.addresses = slices.DeleteFunc(s.addresses, func(x *address) bool { return x == a })
	return &struct {
		RequestID string `xml:"requestId"`
		Return    bool   `xml:"return"`
	}{r.id, true}, nil
}

// dropAddresses disassociates the Elastic IPs of a terminated instance, as
// EC2 does; s.mu is held.
func (s *Server) dropAddresses(inst *instance) {
	for _, a := range s.addresses {
		if a.instance == inst {
			if h, ok := inst.machine.(AddressHolder); ok {
				h.Detach(a.PublicIP) // the machine is gone: nothing to undo on it
			}
			a.instance, a.AssociationID = nil, ""
		}
	}
}
