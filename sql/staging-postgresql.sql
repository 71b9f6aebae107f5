-- The staging table the gateway writes orders into, and its table of delivered keys: PostgreSQL.
--
-- Names are unquoted on purpose: PostgreSQL keeps them in lower case (gatewayauftragimport), and the
-- gateway finds them whatever their case, so gateway.yaml says GatewayAuftragImport for every database.
-- Run it once as the owner of the database:   psql -d sol -f sql/staging-postgresql.sql
-- Then give the gateway's user its rights (docs/sol-database.md):
--   GRANT INSERT ON GatewayAuftragImport TO gateway;
--   GRANT USAGE ON SEQUENCE gatewayauftragimport_importid_seq TO gateway;
--   GRANT SELECT, INSERT ON GatewayDelivered TO gateway;

CREATE TABLE GatewayAuftragImport (
    ImportID            bigserial PRIMARY KEY,        -- the row's number, in the order rows came in
    Mandant             smallint NOT NULL,          -- the SOL company
    Belegart            varchar(20),                -- the document type to create: VVA (order) by default
    Referenznummer      varchar(50) NOT NULL,       -- the marketplace order number: one order, one number
    Belegdatum          timestamp,
    Liefertermin        timestamp,
    A0Empfaenger        varchar(20),                -- the customer account (A0: the ordering customer, also the invoice address)
    A0Matchcode         varchar(50),
    A0Anrede            varchar(50),
    A0Name1             varchar(100),
    A0Name2             varchar(100),
    A0Zusatz            varchar(100),
    A0Strasse           varchar(100),
    A0PLZ               varchar(20),
    A0Ort               varchar(100),
    A0Land              varchar(10),
    A0EMail             varchar(255),
    A0Telefon           varchar(50),
    A1Anrede            varchar(50),                -- A1: the delivery address
    A1Name1             varchar(100),
    A1Name2             varchar(100),
    A1Zusatz            varchar(100),
    A1Strasse           varchar(100),
    A1PLZ               varchar(20),
    A1Ort               varchar(100),
    A1Land              varchar(10),
    Rechnungsempfaenger varchar(20),
    Zahlungskond        varchar(20),
    Versandart          varchar(20),
    Belegmatchcode      varchar(50),
    Vorgangsmatchcode   varchar(50),
    Kopftext            text,
    Fusstext            text,
    Position            integer,                    -- one row per position
    BelegPosID          integer,
    Artikelnummer       varchar(31),
    AuspraegungID       integer,
    Bezeichnung1        varchar(100),
    Bezeichnung2        varchar(100),
    Langtext            text,
    Menge               numeric(19,4),
    Einzelpreis         numeric(19,4),              -- the unit price as the marketplace sends it (gross)
    Rabattbetrag        numeric(19,4),
    Steuersatz          numeric(9,4),
    IstImportiert       smallint NOT NULL DEFAULT 0,  -- SOL's import job sets -1 once the document exists (-1 = yes in SOL)
    GatewayKey          varchar(200),               -- the delivery key of the output the row came from (gateway journal)
    EingefuegtAm        timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX GatewayAuftragImport_Referenz ON GatewayAuftragImport (Referenznummer);
CREATE INDEX GatewayAuftragImport_Offen ON GatewayAuftragImport (IstImportiert);

-- One row per output written into a staging table, in the same transaction as its rows: the
-- gateway asks it after a crash whether an output arrived, and its primary key stops a second insert.
CREATE TABLE GatewayDelivered (
    DeliveryKey         varchar(200) PRIMARY KEY,
    StagingTable        varchar(128) NOT NULL,
    RowsInserted        integer NOT NULL,
    Flow                varchar(64) NOT NULL,
    InputId             bigint NOT NULL,
    OutputName          varchar(64) NOT NULL,
    DeliveredAt         timestamp NOT NULL
);
