package crm

import (
	"fmt"
	"strings"
)

// Field data types, as Zoho's field metadata names them.
const (
	typeText      = "text"
	typeTextarea  = "textarea"
	typeEmail     = "email"
	typePhone     = "phone"
	typeWebsite   = "website"
	typeInteger   = "integer"
	typeDouble    = "double"
	typeCurrency  = "currency"
	typeBoolean   = "boolean"
	typeDate      = "date"
	typeDatetime  = "datetime"
	typePicklist  = "picklist"
	typeLookup    = "lookup"
	typeOwner     = "ownerlookup"
	typeMultiLook = "multi_module_lookup" // stored like a lookup; rendered with the module
)

// fieldKind says where a field's value lives: most in the record's value
// slots, the system fields in the record struct itself.
type fieldKind uint8

const (
	kindSlot fieldKind = iota
	kindOwner
	kindCreatedBy
	kindModifiedBy
	kindCreatedTime
	kindModifiedTime
	kindFullName
)

// field is one field of a module: its metadata and where its value lives.
type field struct {
	api       string
	label     string
	typ       string
	kind      fieldKind
	mandatory bool
	custom    bool
	readOnly  bool
	unique    bool
	hidden    bool // stored and rendered ($se_module) but not listed in the metadata
	length    int
	picks     []string
	lookup    string   // target module of a lookup
	lookups   []string // target modules of a multi-module lookup
	seSlot    int      // multi-module lookup: the slot holding the target module
	slot      int      // index into record.vals; -1 when kind != kindSlot
	id        string   // field id, for the metadata
}

func newField(api, label, typ string, length int) *field {
	return &field{api: api, label: label, typ: typ, length: length, slot: -1, seSlot: -1}
}

func (f *field) req() *field                { f.mandatory = true; return f }
func (f *field) uniq() *field               { f.unique = true; return f }
func (f *field) cust() *field               { f.custom = true; return f }
func (f *field) ro() *field                 { f.readOnly = true; return f }
func (f *field) pick(vals ...string) *field { f.picks = vals; return f }
func (f *field) to(module string) *field    { f.lookup = module; return f }

func txt(api, label string, n int) *field     { return newField(api, label, typeText, n) }
func area(api, label string) *field           { return newField(api, label, typeTextarea, 32000) }
func email(api, label string) *field          { return newField(api, label, typeEmail, 100) }
func phoneF(api, label string) *field         { return newField(api, label, typePhone, 30) }
func integer(api, label string, n int) *field { return newField(api, label, typeInteger, n) }
func money(api, label string) *field          { return newField(api, label, typeCurrency, 16) }
func boolean(api, label string) *field        { return newField(api, label, typeBoolean, 5) }
func date(api, label string) *field           { return newField(api, label, typeDate, 20) }
func datetime(api, label string) *field       { return newField(api, label, typeDatetime, 120) }
func picklist(api, label string, vals ...string) *field {
	return newField(api, label, typePicklist, 120).pick(vals...)
}
func lookup(api, label, module string) *field {
	return newField(api, label, typeLookup, 120).to(module)
}
func multiLookup(api, label string, modules ...string) *field {
	f := newField(api, label, typeMultiLook, 120)
	f.lookups = modules
	return f
}

// relation is a related list: the records of child whose field via points
// at the parent.
type relation struct {
	child string
	via   string
}

// module is the schema of one module, shared by every org of a server.
type module struct {
	api      string
	singular string
	plural   string
	id       string
	fields   []*field
	byAPI    map[string]*field
	slots    int
	display  string // the field whose value names a record in lookups
	dupField string // the system duplicate-check field for upsert ("" = none)
	related  map[string]relation
}

func (m *module) field(api string) *field { return m.byAPI[api] }

// finish assigns slots and field ids and adds the system fields every
// module has.
func (m *module) finish(idPrefix string, n int) {
	sys := []*field{
		newField("Owner", m.singular+" Owner", typeOwner, 120),
		newField("Created_By", "Created By", typeOwner, 120).ro(),
		newField("Modified_By", "Modified By", typeOwner, 120).ro(),
		newField("Created_Time", "Created Time", typeDatetime, 120).ro(),
		newField("Modified_Time", "Modified Time", typeDatetime, 120).ro(),
	}
	sys[0].kind, sys[1].kind, sys[2].kind, sys[3].kind, sys[4].kind = kindOwner, kindCreatedBy, kindModifiedBy, kindCreatedTime, kindModifiedTime
	m.fields = append(m.fields, sys...)
	m.byAPI = map[string]*field{}
	var extra []*field
	for i, f := range m.fields {
		f.id = fmt.Sprintf("%s%03d%03d", idPrefix, n, i+1)
		switch {
		case f.api == "Full_Name":
			f.kind = kindFullName
			f.readOnly = true
		case f.kind == kindSlot:
			f.slot = m.slots
			m.slots++
		}
		if f.typ == typeMultiLook {
			se := txt("$se_module", "Module", 50)
			se.hidden, se.readOnly, se.slot = true, true, m.slots
			m.slots++
			f.seSlot = se.slot
			extra = append(extra, se)
		}
		m.byAPI[f.api] = f
	}
	for _, f := range extra {
		m.byAPI[f.api] = f
	}
	m.fields = append(m.fields, extra...)
}

// Picklist values shared by several modules.
var (
	leadSources = []string{"Advertisement", "Chat", "Cold Call", "Employee Referral", "External Referral",
		"Online Store", "Partner", "Public Relations", "Sales Email Alias", "Seminar Partner",
		"Internal Seminar", "Trade Show", "Web Download", "Web Research"}
	industries = []string{"Communications", "Consulting", "Education", "Finance", "Government",
		"Healthcare", "Logistics", "Manufacturing", "Retail", "Software", "Other"}
	customerTypes = []string{"Enterprise", "Mid-Market", "SMB", "Trial"}
	dealStages    = []string{"Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
		"Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won", "Closed Lost",
		"Closed Lost to Competition"}
	// subPipelines are Bigin's sub-pipelines and the stages each allows.
	subPipelines = map[string][]string{
		"Sales Pipeline Standard": {"Qualification", "Needs Identification", "Proposal/Price Quote",
			"Negotiation/Review", "Closed Won", "Closed Lost"},
		"Renewals": {"Upcoming", "In Discussion", "Renewed", "Churned"},
	}
	subPipelineNames = []string{"Sales Pipeline Standard", "Renewals"}
	taskStatuses     = []string{"Not Started", "Deferred", "In Progress", "Completed", "Waiting for input"}
	taskPriorities   = []string{"High", "Highest", "Low", "Lowest", "Normal"}
	callTypes        = []string{"Outbound", "Inbound", "Missed"}
	callPurposes     = []string{"Prospecting", "Administrative", "Negotiation", "Demo", "Project", "Desk"}
	productCats      = []string{"Hardware", "Software", "Service", "Accessory"}
)

func bigStages() []string {
	var out []string
	seen := map[string]bool{}
	for _, sp := range subPipelineNames {
		for _, st := range subPipelines[sp] {
			if !seen[st] {
				seen[st] = true
				out = append(out, st)
			}
		}
	}
	return out
}

// schema builds the modules of a flavor. Every org of a server shares it:
// the sandbox's orgs are customised alike.
func schema(fl Flavor) (map[string]*module, []string) {
	deals := "Deals"
	parents := []string{"Leads", "Contacts", "Accounts", "Deals", "Products"}
	whats := []string{"Accounts", "Deals", "Leads"}
	if fl == Bigin {
		deals = "Pipelines"
		parents = []string{"Contacts", "Accounts", "Pipelines", "Products"}
		whats = []string{"Accounts", "Pipelines"}
	}
	person := func(api, singular, plural string) *module {
		return &module{api: api, singular: singular, plural: plural, display: "Full_Name", dupField: "Email"}
	}

	contacts := person("Contacts", "Contact", "Contacts")
	contacts.fields = []*field{
		txt("First_Name", "First Name", 40),
		txt("Last_Name", "Last Name", 80).req(),
		txt("Full_Name", "Full Name", 120),
		email("Email", "Email").uniq(),
		email("Secondary_Email", "Secondary Email"),
		phoneF("Phone", "Phone"),
		phoneF("Mobile", "Mobile"),
		txt("Title", "Title", 100),
		txt("Department", "Department", 30),
		lookup("Account_Name", "Account Name", "Accounts"),
		picklist("Lead_Source", "Lead Source", leadSources...),
		txt("Mailing_Street", "Mailing Street", 250),
		txt("Mailing_City", "Mailing City", 100),
		txt("Mailing_State", "Mailing State", 100),
		txt("Mailing_Zip", "Mailing Zip", 30),
		txt("Mailing_Country", "Mailing Country", 100),
		date("Date_of_Birth", "Date of Birth"),
		boolean("Email_Opt_Out", "Email Opt Out"),
		area("Description", "Description"),
		picklist("Customer_Type", "Customer Type", customerTypes...).cust(),
		integer("Loyalty_Points__c", "Loyalty Points", 9).cust(),
		date("Renewal_Date__c", "Renewal Date").cust(),
	}
	contacts.related = map[string]relation{
		"Notes": {"Notes", "Parent_Id"}, deals: {deals, "Contact_Name"},
		"Calls": {"Calls", "Who_Id"}, "Events": {"Events", "Who_Id"}, "Tasks": {"Tasks", "Who_Id"},
	}

	accounts := &module{api: "Accounts", singular: "Account", plural: "Accounts", display: "Account_Name", dupField: "Account_Name"}
	if fl == Bigin {
		accounts.singular, accounts.plural = "Company", "Companies"
	}
	accounts.fields = []*field{
		txt("Account_Name", "Account Name", 200).req().uniq(),
		newField("Website", "Website", typeWebsite, 255),
		phoneF("Phone", "Phone"),
		picklist("Industry", "Industry", industries...),
		picklist("Account_Type", "Account Type", "Analyst", "Competitor", "Customer", "Distributor",
			"Integrator", "Investor", "Partner", "Press", "Prospect", "Reseller", "Other"),
		integer("Employees", "Employees", 9),
		money("Annual_Revenue", "Annual Revenue"),
		txt("Billing_Street", "Billing Street", 250),
		txt("Billing_City", "Billing City", 100),
		txt("Billing_State", "Billing State", 100),
		txt("Billing_Code", "Billing Code", 30),
		txt("Billing_Country", "Billing Country", 100),
		area("Description", "Description"),
		picklist("Tier__c", "Tier", "Gold", "Silver", "Bronze").cust(),
	}
	accounts.related = map[string]relation{
		"Contacts": {"Contacts", "Account_Name"}, deals: {deals, "Account_Name"}, "Notes": {"Notes", "Parent_Id"},
		"Calls": {"Calls", "What_Id"}, "Events": {"Events", "What_Id"}, "Tasks": {"Tasks", "What_Id"},
	}

	dealMod := &module{api: deals, singular: "Deal", plural: "Deals", display: "Deal_Name", dupField: "Deal_Name"}
	if fl == Bigin {
		dealMod.singular, dealMod.plural = "Pipeline", "Pipelines"
		dealMod.fields = []*field{
			txt("Deal_Name", "Deal Name", 120).req(),
			picklist("Pipeline", "Pipeline", "Sales Pipeline"),
			picklist("Sub_Pipeline", "Sub-Pipeline", subPipelineNames...).req(),
			picklist("Stage", "Stage", bigStages()...).req(),
			date("Closing_Date", "Closing Date"),
			money("Amount", "Amount"),
			lookup("Contact_Name", "Contact Name", "Contacts"),
			lookup("Account_Name", "Company Name", "Accounts"),
			area("Description", "Description"),
		}
	} else {
		dealMod.fields = []*field{
			txt("Deal_Name", "Deal Name", 120).req(),
			lookup("Account_Name", "Account Name", "Accounts"),
			lookup("Contact_Name", "Contact Name", "Contacts"),
			money("Amount", "Amount"),
			picklist("Stage", "Stage", dealStages...).req(),
			date("Closing_Date", "Closing Date").req(),
			integer("Probability", "Probability (%)", 3),
			picklist("Type", "Type", "New Business", "Existing Business"),
			picklist("Lead_Source", "Lead Source", leadSources...),
			txt("Next_Step", "Next Step", 100),
			area("Description", "Description"),
		}
	}
	dealMod.related = map[string]relation{
		"Notes": {"Notes", "Parent_Id"},
		"Calls": {"Calls", "What_Id"}, "Events": {"Events", "What_Id"}, "Tasks": {"Tasks", "What_Id"},
	}

	products := &module{api: "Products", singular: "Product", plural: "Products", display: "Product_Name", dupField: "Product_Name"}
	products.fields = []*field{
		txt("Product_Name", "Product Name", 120).req(),
		txt("Product_Code", "Product Code", 40),
		money("Unit_Price", "Unit Price"),
		picklist("Product_Category", "Product Category", productCats...),
		boolean("Product_Active", "Product Active"),
		boolean("Taxable", "Taxable"),
		area("Description", "Description"),
		integer("Warranty_Months__c", "Warranty (months)", 3).cust(),
	}
	products.related = map[string]relation{"Notes": {"Notes", "Parent_Id"}}

	notes := &module{api: "Notes", singular: "Note", plural: "Notes", display: "Note_Title"}
	notes.fields = []*field{
		txt("Note_Title", "Note Title", 120),
		area("Note_Content", "Note Content").req(),
		multiLookup("Parent_Id", "Parent ID", parents...).req(),
	}

	activity := func(api, singular, plural, title string, extra ...*field) *module {
		m := &module{api: api, singular: singular, plural: plural, display: title}
		m.fields = append([]*field{txt(title, strings.ReplaceAll(title, "_", " "), 255).req()}, extra...)
		m.fields = append(m.fields,
			lookup("Who_Id", "Contact Name", "Contacts"),
			multiLookup("What_Id", "Related To", whats...),
			area("Description", "Description"))
		return m
	}
	calls := activity("Calls", "Call", "Calls", "Subject",
		picklist("Call_Type", "Call Type", callTypes...).req(),
		picklist("Call_Purpose", "Call Purpose", callPurposes...),
		datetime("Call_Start_Time", "Call Start Time").req(),
		txt("Call_Duration", "Call Duration", 10))
	events := activity("Events", "Meeting", "Meetings", "Event_Title",
		datetime("Start_DateTime", "From").req(),
		datetime("End_DateTime", "To").req(),
		txt("Venue", "Venue", 255),
		boolean("All_day", "All day"))
	tasks := activity("Tasks", "Task", "Tasks", "Subject",
		date("Due_Date", "Due Date"),
		picklist("Status", "Status", taskStatuses...),
		picklist("Priority", "Priority", taskPriorities...))

	mods := []*module{contacts, accounts, dealMod, products, notes, calls, events, tasks}
	if fl == CRM {
		leads := person("Leads", "Lead", "Leads")
		leads.fields = []*field{
			txt("First_Name", "First Name", 40),
			txt("Last_Name", "Last Name", 80).req(),
			txt("Full_Name", "Full Name", 120),
			txt("Company", "Company", 200).req(),
			email("Email", "Email").uniq(),
			phoneF("Phone", "Phone"),
			phoneF("Mobile", "Mobile"),
			txt("Title", "Title", 100),
			picklist("Lead_Source", "Lead Source", leadSources...),
			picklist("Lead_Status", "Lead Status", "Attempted to Contact", "Contact in Future", "Contacted",
				"Junk Lead", "Lost Lead", "Not Contacted", "Pre-Qualified", "Not Qualified"),
			picklist("Industry", "Industry", industries...),
			txt("City", "City", 100),
			txt("Country", "Country", 100),
			boolean("Email_Opt_Out", "Email Opt Out"),
			area("Description", "Description"),
		}
		leads.related = map[string]relation{
			"Notes": {"Notes", "Parent_Id"},
			"Calls": {"Calls", "What_Id"}, "Events": {"Events", "What_Id"}, "Tasks": {"Tasks", "What_Id"},
		}
		mods = append([]*module{leads}, mods...)
	}
	out := map[string]*module{}
	var order []string
	prefix := "5725767000000"
	if fl == Bigin {
		prefix = "2034020000000"
	}
	for i, m := range mods {
		m.id = fmt.Sprintf("%s%06d", prefix, 100000+i)
		m.finish(prefix, i+1)
		out[m.api] = m
		order = append(order, m.api)
	}
	return out, order
}
