"""Privacy: columns about people are dropped at load unless mapped (see also test_hostile.py,
where a real run proves their values reach no report, artifact or snapshot)."""

from __future__ import annotations

import pytest

from icp_research.data import loading
from icp_research.data.schema import personal_column

from .conftest import write_project

PERSONAL = [
    "Contact Email", "Phone", "First Name", "Owner Email", "Champion Name", "ownerEmail",
    "Primary Contact", "Account Owner", "Created By", "Last Modified By", "Mobile",
    "Mobile Phone", "LinkedIn URL", "Billing Street", "Surname", "Username", "E-mail",
    "EMAIL_ADDRESS", "Date of Birth", "Sales Rep", "Account Executive", "Full_Name", "CSM Name",
    "Contact LinkedIn", "Twitter Handle",
]  # fmt: skip
NOT_PERSONAL = [
    "Company Name", "Account Name", "Industry", "Employees", "Persona", "Mobile App",
    "Plan Name", "Product Name", "Number of Contacts", "Ownership Type", "Champion Count",
    "Title", "Department", "Billing Country", "Created Date", "Account Source", "CRM",
    "linkedin_followers", "Twitter Followers", "LinkedIn Company Page",
]  # fmt: skip


@pytest.mark.parametrize("column", PERSONAL)
def test_columns_about_people_are_recognised(column):
    assert personal_column(column)


@pytest.mark.parametrize("column", NOT_PERSONAL)
def test_company_attributes_are_not_taken_for_people(column):
    assert not personal_column(column)


def test_personal_columns_are_dropped_at_load_unless_mapped(tmp_path):
    config = write_project(
        tmp_path,
        {
            "accounts.csv": "Account ID,Industry,Contact Email,Champion Name,Account Owner,Phone\n"
            "A1,SaaS,a@x.test,Ann Champion,Rep One,+1 555 0100\n"
            "A2,Retail,b@x.test,Bob Champion,Rep Two,+1 555 0101\n",
        },
        '[tables.accounts]\npath = "accounts.csv"\n[tables.accounts.columns]\n'
        'account_id = "Account ID"\nphone = "Phone"\n',
    )
    dataset = loading.load_tables(config)
    accounts = dataset.tables["accounts"]
    # Mapped explicitly: kept (the analyst asked for it). Unmapped: dropped, and said so.
    assert sorted(accounts.columns) == ["account_id", "industry", "phone"]
    notes = [p.line() for p in dataset.report.infos]
    assert any(
        'personal-data columns dropped (not needed by any analysis): "Contact Email", '
        '"Champion Name", "Account Owner"' in line
        for line in notes
    )
    assert "Ann Champion" not in dataset.tables["accounts"].to_csv()
