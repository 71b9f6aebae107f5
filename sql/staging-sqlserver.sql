-- The staging table the gateway writes orders into, and its table of delivered keys: Microsoft SQL Server
-- (SOL's database). Run it once in SOL's database (sqlcmd -d OLReweAbfD -i sql/staging-sqlserver.sql,
-- or in SQL Server Management Studio). Then give the gateway's user its rights (docs/sol-database.md):
--   GRANT INSERT ON dbo.GatewayAuftragImport TO gateway;
--   GRANT SELECT, INSERT ON dbo.GatewayDelivered TO gateway;

CREATE TABLE GatewayAuftragImport (
    ImportID            bigint IDENTITY(1,1) PRIMARY KEY,        -- the row's number, in the order rows came in
    Mandant             smallint NOT NULL,          -- the SOL company
    Belegart            nvarchar(20),               -- the document type to create: VVA (order) by default
    Referenznummer      nvarchar(50) NOT NULL,      -- the marketplace order number: one order, one number
    Belegdatum          datetime2(0),
    Liefertermin        datetime2(0),
    A0Empfaenger        nvarchar(20),               -- the customer account (A0: the ordering customer, also the invoice address)
    A0Matchcode         nvarchar(50),
    A0Anrede            nvarchar(50),
    A0Name1             nvarchar(100),
    A0Name2             nvarchar(100),
    A0Zusatz            nvarchar(100),
    A0Strasse           nvarchar(100),
    A0PLZ               nvarchar(20),
    A0Ort               nvarchar(100),
    A0Land              nvarchar(10),
    A0EMail             nvarchar(255),
    A0Telefon           nvarchar(50),
    A1Anrede            nvarchar(50),               -- A1: the delivery address
    A1Name1             nvarchar(100),
    A1Name2             nvarchar(100),
    A1Zusatz            nvarchar(100),
    A1Strasse           nvarchar(100),
    A1PLZ               nvarchar(20),
    A1Ort               nvarchar(100),
    A1Land              nvarchar(10),
    Rechnungsempfaenger nvarchar(20),
    Zahlungskond        nvarchar(20),
    Versandart          nvarchar(20),
    Belegmatchcode      nvarchar(50),
    Vorgangsmatchcode   nvarchar(50),
    Kopftext            nvarchar(max),
    Fusstext            nvarchar(max),
    Position            int,                        -- one row per position
    BelegPosID          int,
    Artikelnummer       nvarchar(31),
    AuspraegungID       int,
    Bezeichnung1        nvarchar(100),
    Bezeichnung2        nvarchar(100),
    Langtext            nvarchar(max),
    Menge               decimal(19,4),
    Einzelpreis         decimal(19,4),              -- the unit price as the marketplace sends it (gross)
    Rabattbetrag        decimal(19,4),
    Steuersatz          decimal(9,4),
    IstImportiert       smallint NOT NULL DEFAULT 0,  -- SOL's import job sets -1 once the document exists (-1 = yes in SOL)
    GatewayKey          nvarchar(200),              -- the delivery key of the output the row came from (gateway journal)
    EingefuegtAm        datetime2(0) NOT NULL DEFAULT SYSDATETIME()
);

CREATE INDEX GatewayAuftragImport_Referenz ON GatewayAuftragImport (Referenznummer);
CREATE INDEX GatewayAuftragImport_Offen ON GatewayAuftragImport (IstImportiert);

-- One row per output written into a staging table, in the same transaction as its rows: the
-- gateway asks it after a crash whether an output arrived, and its primary key stops a second insert.
CREATE TABLE GatewayDelivered (
    DeliveryKey         nvarchar(200) PRIMARY KEY,
    StagingTable        nvarchar(128) NOT NULL,
    RowsInserted        int NOT NULL,
    Flow                nvarchar(64) NOT NULL,
    InputId             bigint NOT NULL,
    OutputName          nvarchar(64) NOT NULL,
    DeliveredAt         datetime2(0) NOT NULL
);
