-- The staging table the gateway writes orders into, and its table of delivered keys: SQLite
-- (for trying the gateway out without a server: sqlite3 staging.db < sql/staging-sqlite.sql).

CREATE TABLE GatewayAuftragImport (
    ImportID            INTEGER PRIMARY KEY AUTOINCREMENT,        -- the row's number, in the order rows came in
    Mandant             SMALLINT NOT NULL,          -- the SOL company
    Belegart            VARCHAR(20),                -- the document type to create: VVA (order) by default
    Referenznummer      VARCHAR(50) NOT NULL,       -- the marketplace order number: one order, one number
    Belegdatum          TIMESTAMP,
    Liefertermin        TIMESTAMP,
    A0Empfaenger        VARCHAR(20),                -- the customer account (A0: the ordering customer, also the invoice address)
    A0Matchcode         VARCHAR(50),
    A0Anrede            VARCHAR(50),
    A0Name1             VARCHAR(100),
    A0Name2             VARCHAR(100),
    A0Zusatz            VARCHAR(100),
    A0Strasse           VARCHAR(100),
    A0PLZ               VARCHAR(20),
    A0Ort               VARCHAR(100),
    A0Land              VARCHAR(10),
    A0EMail             VARCHAR(255),
    A0Telefon           VARCHAR(50),
    A1Anrede            VARCHAR(50),                -- A1: the delivery address
    A1Name1             VARCHAR(100),
    A1Name2             VARCHAR(100),
    A1Zusatz            VARCHAR(100),
    A1Strasse           VARCHAR(100),
    A1PLZ               VARCHAR(20),
    A1Ort               VARCHAR(100),
    A1Land              VARCHAR(10),
    Rechnungsempfaenger VARCHAR(20),
    Zahlungskond        VARCHAR(20),
    Versandart          VARCHAR(20),
    Belegmatchcode      VARCHAR(50),
    Vorgangsmatchcode   VARCHAR(50),
    Kopftext            TEXT,
    Fusstext            TEXT,
    Position            INTEGER,                    -- one row per position
    BelegPosID          INTEGER,
    Artikelnummer       VARCHAR(31),
    AuspraegungID       INTEGER,
    Bezeichnung1        VARCHAR(100),
    Bezeichnung2        VARCHAR(100),
    Langtext            TEXT,
    Menge               REAL,
    Einzelpreis         REAL,                       -- the unit price as the marketplace sends it (gross)
    Rabattbetrag        REAL,
    Steuersatz          REAL,
    IstImportiert       SMALLINT NOT NULL DEFAULT 0,  -- SOL's import job sets -1 once the document exists (-1 = yes in SOL)
    GatewayKey          VARCHAR(200),               -- the delivery key of the output the row came from (gateway journal)
    EingefuegtAm        TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX GatewayAuftragImport_Referenz ON GatewayAuftragImport (Referenznummer);
CREATE INDEX GatewayAuftragImport_Offen ON GatewayAuftragImport (IstImportiert);

-- One row per output written into a staging table, in the same transaction as its rows: the
-- gateway asks it after a crash whether an output arrived, and its primary key stops a second insert.
CREATE TABLE GatewayDelivered (
    DeliveryKey         VARCHAR(200) PRIMARY KEY,
    StagingTable        VARCHAR(128) NOT NULL,
    RowsInserted        INTEGER NOT NULL,
    Flow                VARCHAR(64) NOT NULL,
    InputId             INTEGER NOT NULL,
    OutputName          VARCHAR(64) NOT NULL,
    DeliveredAt         TIMESTAMP NOT NULL
);
